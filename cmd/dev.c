/*
 * dev: `orchd dev`, a whole cluster on one machine for trying orchd out.
 * A small supervisor starts a scheduler, N workers and a gateway as child
 * processes of this same executable, each exactly the role it is when run
 * alone, prints where they listen, and stops them all on Ctrl-C or
 * SIGTERM. Children die with the supervisor (PR_SET_PDEATHSIG), so killing
 * it, even with SIGKILL, leaves no orphan behind.
 *
 * With --tls, every connection is TLS: scripts/gen-dev-certs.sh (built into
 * the executable) makes a throwaway CA and certificates in DATA_DIR/tls,
 * every role serves and presents server.pem, and the scheduler asks for
 * it (mutual TLS). --auth-token-file is handed to every role, and SIGHUP
 * is passed on to them (each re-reads it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "xalloc.h"

#define MAX_CHILDREN 66

/* scripts/gen-dev-certs.sh (Makefile: EMBED_C). */
extern const uint8_t gen_dev_certs_sh[];
extern const size_t gen_dev_certs_sh_len;

struct child {
	pid_t pid;
	char name[32];
	int port;
};

static struct child kids[MAX_CHILDREN];
static int nkids;
static char self[4096];

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the child's "PORT n" line from fd within timeout_ms; -1 if none. */
static int read_port(int fd, int timeout_ms)
{
	char buf[256];
	size_t have = 0;
	int64_t end = mono_ms() + timeout_ms;
	for (;;) {
		char *nl = memchr(buf, '\n', have);
		if (nl) {
			*nl = '\0';
			int port;
			if (sscanf(buf, "PORT %d", &port) == 1)
				return port;
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
			continue;
		}
		int64_t left = end - mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
}

/* Starts `orchd ROLE args…`; returns its port or -1. */
static int spawn(const char *name, char *const argv[])
{
	int pfd[2];
	if (nkids == MAX_CHILDREN || pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1); /* the supervisor is already gone */
		dup2(pfd[1], 1);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(self, argv);
		fprintf(stderr, "orchd dev: cannot run %s: %s\n", self, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	struct child *k = &kids[nkids++];
	k->pid = pid;
	snprintf(k->name, sizeof k->name, "%s", name);
	k->port = read_port(pfd[0], 20000);
	/* Keep the pipe's read end open (and unread) would block the child
	 * on later prints; it prints nothing else, so closing is safe. */
	close(pfd[0]);
	return k->port;
}

static void stop_all(int grace_ms)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i].pid > 0)
			kill(kids[i].pid, SIGTERM);
	int64_t end = mono_ms() + grace_ms;
	int left = nkids;
	while (left > 0 && mono_ms() < end) {
		left = 0;
		for (int i = 0; i < nkids; i++) {
			if (kids[i].pid <= 0)
				continue;
			if (waitpid(kids[i].pid, NULL, WNOHANG) == kids[i].pid)
				kids[i].pid = 0;
			else
				left++;
		}
		if (left)
			usleep(20000); /* bounded poll of children we already signalled */
	}
	for (int i = 0; i < nkids; i++) {
		if (kids[i].pid > 0) {
			kill(kids[i].pid, SIGKILL);
			waitpid(kids[i].pid, NULL, 0);
		}
	}
}

/* Runs the embedded gen-dev-certs.sh for dir (sh reads it from a pipe).
 * Returns 0, or -1 after reporting why. */
static int make_certs(const char *dir)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		cmd_error("dev", "cannot make certificates: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[0], 0);
		execl("/bin/sh", "sh", "-s", "--", dir, (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	size_t off = 0;
	while (pid > 0 && off < gen_dev_certs_sh_len) {
		ssize_t n = write(p[1], gen_dev_certs_sh + off, gen_dev_certs_sh_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(p[1]);
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		cmd_error("dev", "cannot make certificates in %s (gen-dev-certs.sh needs the "
			  "openssl command)", dir);
		return -1;
	}
	return 0;
}

static const char synopsis[] = "[--workers N] [--slots N] [--data-dir DIR] [--tls] [FLAGS]";

int cmd_dev(int argc, char **argv)
{
	int workers = 2, slots = 4, gw_port = 50051, sc_port = 50052, wk_port = 50053;
	const char *data_dir = "./orchd-data";
	const char *log_level = "warn";
	const char *token_file = NULL;
	int tls = 0;
	struct opt_list handlers = {0};
	struct opt opts[] = {
		{"workers", "ORCHD_DEV_WORKERS", OPT_INT, &workers, "N", "workers to start (default 2)"},
		{"slots", "ORCHD_SLOTS", OPT_INT, &slots, "N", "slots per worker (default 4)"},
		{"data-dir", "ORCHD_DATA_DIR", OPT_STR, &data_dir, "DIR",
		 "the scheduler's store (default ./orchd-data)"},
		{"gateway-port", NULL, OPT_INT, &gw_port, "PORT", "gateway port (default 50051; 0: any)"},
		{"scheduler-port", NULL, OPT_INT, &sc_port, "PORT",
		 "scheduler port (default 50052; 0: any)"},
		{"worker-port", NULL, OPT_INT, &wk_port, "PORT",
		 "first worker's port, the next ones follow (default 50053; 0: any)"},
		{"handler", NULL, OPT_LIST, &handlers, "NAME=COMMAND",
		 "extra handler for every worker (repeatable)"},
		{"log-level", "ORCHD_LOG", OPT_STR, &log_level, "LEVEL",
		 "the roles' log level (default warn)"},
		{"tls", NULL, OPT_BOOL, &tls, NULL,
		 "TLS everywhere (mutual to the scheduler), with throwaway certificates made in "
		 "DATA_DIR/tls"},
		{"auth-token-file", NULL, OPT_STR, &token_file, "FILE",
		 "every role accepts (and presents) the tokens of FILE"},
		{NULL, NULL, 0, NULL, NULL, NULL},
	};
	int n = cmd_parse("dev", synopsis, opts, argc, argv);
	if (n < 0) {
		opt_list_free(&handlers);
		return -1 - n;
	}
	if (workers < 1 || workers > MAX_CHILDREN - 2 || slots < 1) {
		cmd_error("dev", "--workers must be 1..%d and --slots at least 1", MAX_CHILDREN - 2);
		opt_list_free(&handlers);
		return EXIT_USAGE;
	}
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len <= 0) {
		cmd_error("dev", "cannot find my own executable: %s", strerror(errno));
		opt_list_free(&handlers);
		return EXIT_FAIL;
	}
	self[len] = '\0';

	/* Flags every role gets: TLS material and the token file. */
	char tlsdir[4096], cert[4200], key[4200], ca[4200];
	const char *common[12];
	size_t ncommon = 0;
	if (tls) {
		snprintf(tlsdir, sizeof tlsdir, "%s/tls", data_dir);
		mkdir(data_dir, 0755);
		if (make_certs(tlsdir) != 0) {
			opt_list_free(&handlers);
			return EXIT_FAIL;
		}
		snprintf(cert, sizeof cert, "%s/server.pem", tlsdir);
		snprintf(key, sizeof key, "%s/server.key", tlsdir);
		snprintf(ca, sizeof ca, "%s/ca.pem", tlsdir);
		const char *t[] = {"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca};
		for (size_t i = 0; i < 6; i++)
			common[ncommon++] = t[i];
	}
	if (token_file) {
		common[ncommon++] = "--auth-token-file";
		common[ncommon++] = token_file;
	}

	/* Signals are taken synchronously below; children start unblocked. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	char listen[64], sched_addr[64], slots_s[16], wid[64];
	snprintf(listen, sizeof listen, "127.0.0.1:%d", sc_port);
	char *sargv[24] = {"scheduler", "--listen", listen, "--data-dir", (char *)data_dir,
			   "--log-level", (char *)log_level};
	size_t ns = 7;
	for (size_t i = 0; i < ncommon; i++)
		sargv[ns++] = (char *)common[i];
	if (tls) {
		sargv[ns++] = "--tls-client-ca";
		sargv[ns++] = ca;
	}
	int sp = spawn("scheduler", sargv);
	if (sp < 0) {
		cmd_error("dev", "the scheduler did not start (is port %d free?)", sc_port);
		stop_all(2000);
		opt_list_free(&handlers);
		return EXIT_FAIL;
	}
	snprintf(sched_addr, sizeof sched_addr, "127.0.0.1:%d", sp);
	snprintf(slots_s, sizeof slots_s, "%d", slots);
	int ok = 1;
	for (int i = 0; i < workers && ok; i++) {
		snprintf(listen, sizeof listen, "127.0.0.1:%d", wk_port ? wk_port + i : 0);
		snprintf(wid, sizeof wid, "dev-worker-%d", i + 1);
		size_t na = 0;
		char **wargv = xcalloc(12 + ncommon + 2 * handlers.n, sizeof *wargv);
		wargv[na++] = "worker";
		wargv[na++] = "--listen";
		wargv[na++] = listen;
		wargv[na++] = "--scheduler";
		wargv[na++] = sched_addr;
		wargv[na++] = "--slots";
		wargv[na++] = slots_s;
		wargv[na++] = "--worker-id";
		wargv[na++] = wid;
		wargv[na++] = "--log-level";
		wargv[na++] = (char *)log_level;
		for (size_t h = 0; h < handlers.n; h++) {
			wargv[na++] = "--handler";
			wargv[na++] = (char *)handlers.v[h];
		}
		for (size_t k = 0; k < ncommon; k++)
			wargv[na++] = (char *)common[k];
		ok = spawn(wid, wargv) > 0;
		free(wargv);
	}
	snprintf(listen, sizeof listen, "127.0.0.1:%d", gw_port);
	char *gargv[24] = {"gateway", "--listen", listen, "--scheduler", sched_addr,
			   "--log-level", (char *)log_level};
	for (size_t i = 0; i < ncommon; i++)
		gargv[7 + i] = (char *)common[i];
	int gp = ok ? spawn("gateway", gargv) : -1;
	opt_list_free(&handlers);
	if (gp < 0) {
		cmd_error("dev", "a worker or the gateway did not start (are ports %d..%d and %d free?)",
			  wk_port, wk_port + workers - 1, gw_port);
		stop_all(5000);
		return EXIT_FAIL;
	}
	printf("orchd dev: scheduler 127.0.0.1:%d, %d worker%s x %d slots, gateway 127.0.0.1:%d\n",
	       sp, workers, workers > 1 ? "s" : "", slots, gp);
	printf("GATEWAY 127.0.0.1:%d\n", gp);
	if (tls)
		printf("TLS_CA %s\n", ca);
	printf("try:  orchd submit echo --payload hello --gateway 127.0.0.1:%d%s%s%s%s --wait\n",
	       gp, tls ? " --tls-ca " : "", tls ? ca : "", token_file ? " --token-file " : "",
	       token_file ? token_file : "");
	printf("stop: Ctrl-C\n");
	fflush(stdout);

	int rc = EXIT_OK;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig == SIGINT || sig == SIGTERM) {
			fprintf(stderr, "orchd dev: stopping\n");
			break;
		}
		if (sig == SIGHUP) {
			/* Each role re-reads its token file. */
			for (int i = 0; i < nkids; i++)
				if (kids[i].pid)
					kill(kids[i].pid, SIGHUP);
			continue;
		}
		if (sig != SIGCHLD)
			continue;
		/* A role that exits on its own takes the cluster down with it:
		 * a half cluster only confuses. */
		int status;
		pid_t pid;
		int died = 0;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (int i = 0; i < nkids; i++) {
				if (kids[i].pid == pid) {
					kids[i].pid = 0;
					fprintf(stderr, "orchd dev: %s exited (status %d)\n", kids[i].name,
						WIFEXITED(status) ? WEXITSTATUS(status)
								  : 128 + WTERMSIG(status));
					died = 1;
				}
			}
		}
		if (died) {
			rc = EXIT_FAIL;
			break;
		}
	}
	stop_all(15000);
	return rc;
}
