/* "gregor serve": parse the command line and configuration, run a broker until SIGTERM/SIGINT. */
#ifndef GREGOR_BROKER_SERVE_H
#define GREGOR_BROKER_SERVE_H

/* argv[0] is "serve". Returns the process exit status. Call from the main thread only. */
int broker_serve_main(int argc, char **argv);

#endif
