#include "cli/internal.h"
int cli_bench_main(int argc, char **argv) { return 1; }
