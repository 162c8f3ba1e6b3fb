/* main.c - popfetch's entry point: hand the arguments to the command line. */
#include "config.h"

#include "cli.h"

int
main(int argc, char *argv[])
{
	return cli_main(argc, argv);
}
