/* commands.h - the subcommands of `lathe`, one file each; each returns the process exit code. */
#ifndef LATHE_TOOLS_COMMANDS_H
#define LATHE_TOOLS_COMMANDS_H

int cmd_synth(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_notebook(int argc, char **argv);

#endif
