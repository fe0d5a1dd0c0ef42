/* SPDX-License-Identifier: MIT */
#ifndef USWAP_TOOL_H
#define USWAP_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "uswap.h"

/* Subcommands: argv[0] is the command's name.  @return the exit status. */
int cmd_demo(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_pagemap(int argc, char **argv);
/* The help texts of run, stat and pagemap (uswap(1) says the same). */
void run_usage(FILE *f);
void stat_usage(FILE *f);
void pagemap_usage(FILE *f);

/*
 * Parse the options shared by the commands that open an instance
 * (--limit, --codec, --store, --folio, --store-limit, --threads) from
 * argv[*i]; @return 1 when argv[*i] was one of them (and *i advanced past
 * its value), 0 when it was not, -1 after printing an error.
 */
int tool_config_option(int argc, char **argv, int *i, struct uswap_config *cfg);
/* Print the shared options' help. */
void tool_config_help(void);

#endif
