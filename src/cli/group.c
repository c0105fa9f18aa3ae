#include "cli/internal.h"
int cli_group_main(int argc, char **argv) { return 1; }
