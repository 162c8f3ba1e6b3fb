/*
 * cli.h - the command line (popfetch(1)): parse arguments, load the
 * configuration, pick the accounts and run the command, and turn the
 * outcome into one exit code (popfetch(1), EXIT STATUS).
 */
#ifndef POPFETCH_CLI_H
#define POPFETCH_CLI_H

/* Run popfetch with these arguments; returns the process exit code. */
int	cli_main(int argc, char *argv[]);

#endif
