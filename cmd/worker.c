/* worker: under construction. */
#include "cmd.h"

int cmd_worker(int argc, char **argv)
{
	cmd_error("worker", "not built yet");
	return EXIT_FAIL;
}
