/* cli.h — the subcommands of the `sealtrack` binary (one file each). Each takes
 * argc/argv starting at the subcommand name and returns the process exit code. */
#ifndef ST_CLI_H
#define ST_CLI_H

int cli_serve(int argc, char **argv);
int cli_decode(int argc, char **argv);
int cli_query(int argc, char **argv); /* positions | events | devices | raw */
int cli_device(int argc, char **argv); /* device add */
int cli_sim(int argc, char **argv);
int cli_user(int argc, char **argv); /* user add */

#endif
