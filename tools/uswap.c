/* SPDX-License-Identifier: MIT */
/*
 * uswap: the command-line tool.  It uses only the public header.
 */
#include <stdio.h>
#include <string.h>

#include "uswap.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: uswap COMMAND [OPTIONS]\n"
		   "\n"
		   "commands:\n"
		   "  run       run a program with its memory managed under a budget:\n"
		   "            uswap run --limit SIZE [OPTIONS] [--] PROGRAM [ARGS...]\n"
		   "  stat      show the counters of a program running under uswap run:\n"
		   "            uswap stat [--json] [--watch] PID\n"
		   "  pagemap   show a map of a program's managed memory, one character per\n"
		   "            folio: uswap pagemap [--region ADDR | --all] [--width N] [--json]\n"
		   "            PID\n"
		   "  demo      fill managed memory with realistic data under a budget, read and\n"
		   "            write it back, verify every byte, and print what uswap did\n"
		   "  version   print the version\n"
		   "\n"
		   "'uswap COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stat"))
		return cmd_stat(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pagemap"))
		return cmd_pagemap(argc - 1, argv + 1);
	if (!strcmp(argv[1], "demo"))
		return cmd_demo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("uswap %d.%d\n", USWAP_VERSION_MAJOR, USWAP_VERSION_MINOR);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "uswap: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
