/*
 * The stage shell: DVC runs every stage command as `$SHELL -c COMMAND` (dvc/stage/run.py _make_cmd), and $SHELL is
 * this program (built by shell.py; read its docstring for where and when).
 *
 *   stage-shell -c COMMAND
 *
 * Runs `/bin/sh -c COMMAND` as its child in the same process group, or `PREFIX... /bin/sh -c COMMAND` when
 * $STAGE_SANDBOX_ARGV holds a prefix (e.g. a bwrap argv; its arguments separated by the ASCII unit separator 0x1f),
 * waits for it with wait4 and appends its resource usage (peak RSS, CPU) as one JSON line to the file named by
 * $STAGE_RUSAGE_FILE (plus one line when it starts), then exits with the child's status as a shell does (128+N for
 * signal N). $STAGE_LIMITS (cpu=S,as=B,nofile=N,fsize=B) are set with setrlimit in the child before it execs. Inside a
 * stage's group ($STAGE_PROCESS_GROUP names it; the stage's DVC process leads it), DVC dying takes the whole group down.
 * None of these variables reach the command.
 *
 *   stage-shell --init [--uid=N] -- PROGRAM ARGS...
 *
 * The same program inside the sandbox, where the prefix (workers/sandbox/argv.py) runs it as bwrap's command and so as
 * PID 1 of the stage's PID namespace: for a prefix, the outer stage shell leaves its own executable open as fd 3
 * (SELF_FD), which bwrap runs as /proc/self/fd/3 (nothing is mounted for it; PID 1 closes it first). PID 1 forks
 * PROGRAM; the child (root, when --uid is given) makes the output pipes on fds 1 and 2 the uid's, drops to uid and gid
 * N with no supplementary groups, an empty capability bounding set, no capabilities and no_new_privs, checks the ids,
 * and execs PROGRAM (any failure: exit 127, PROGRAM never runs). The parent passes SIGTERM, SIGINT and SIGHUP on to
 * it, reaps every process that ends in the namespace and exits with PROGRAM's status (128+N for signal N), which bwrap
 * passes on; the namespace, and whatever PROGRAM started, ends with it. PROGRAM's usage is in PID 1's children's usage,
 * and so reaches the outer stage shell's wait4. One exec where coreutils timeout (PID 1), sh (the chown of the pipes),
 * chown and util-linux setpriv took three to five (docs/benchmarks.md, "stage command in its sandbox").
 *
 * C rather than Python because it starts for every stage command: about 1 ms, against 25-30 ms for an interpreter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUSAGE_FILE_ENV "STAGE_RUSAGE_FILE"
#define LIMITS_ENV "STAGE_LIMITS"
#define GROUP_ENV "STAGE_PROCESS_GROUP"
#define SANDBOX_ARGV_ENV "STAGE_SANDBOX_ARGV"
#define SANDBOX_ARGV_SEPARATOR '\x1f'
#define SHELL "/bin/sh"
/* The descriptor a prefix finds the stage shell's own executable on (argv.py names it: /proc/self/fd/3). */
#define SELF_FD 3

static const int reset_in_child[] = {SIGPIPE, SIGXFSZ, SIGTERM, SIGHUP, SIGINT};

static double now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void kill_own_group(int signum) {
    (void)signum;
    /* The launcher's process group is the stage: DVC, this wrapper, the command and whatever it started. */
    kill(0, SIGKILL);
}

/* One write on an O_APPEND descriptor: lines from concurrent commands never interleave. */
static void append(const char *path, const char *line) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return;
    }
    size_t length = strlen(line);
    ssize_t written;
    do {
        written = write(fd, line, length);
    } while (written < 0 && errno == EINTR);
    close(fd);
}

static char *take_env(const char *name) {
    const char *value = getenv(name);
    char *copy = value ? strdup(value) : NULL;
    unsetenv(name);
    return copy;
}

/* "cpu=S,as=B,nofile=N,fsize=B"; never above the worker's own hard limit. 0 on success. */
static int apply_limits(char *spec) {
    for (char *item = strtok(spec, ","); item; item = strtok(NULL, ",")) {
        char *equals = strchr(item, '=');
        if (!equals) {
            return -1;
        }
        *equals = '\0';
        int which;
        if (strcmp(item, "cpu") == 0) {
            which = RLIMIT_CPU;
        } else if (strcmp(item, "as") == 0) {
            which = RLIMIT_AS;
        } else if (strcmp(item, "nofile") == 0) {
            which = RLIMIT_NOFILE;
        } else if (strcmp(item, "fsize") == 0) {
            which = RLIMIT_FSIZE;
        } else {
            return -1;
        }
        char *end;
        errno = 0;
        unsigned long long wanted = strtoull(equals + 1, &end, 10);
        if (errno || *end) {
            return -1;
        }
        struct rlimit current;
        if (getrlimit(which, &current) != 0) {
            return -1;
        }
        rlim_t value = (rlim_t)wanted;
        if (current.rlim_max != RLIM_INFINITY && current.rlim_max < value) {
            value = current.rlim_max;
        }
        struct rlimit wanted_limit = {value, value};
        if (setrlimit(which, &wanted_limit) != 0) {
            return -1;
        }
    }
    return 0;
}

/* argv for the command: [PREFIX..., "/bin/sh", "-c", COMMAND, NULL], PREFIX split out of `sandbox` (may be NULL). */
static char **command_argv(char *sandbox, const char *command) {
    size_t count = 0;
    if (sandbox && *sandbox) {
        count = 1;
        for (const char *c = sandbox; *c; c++) {
            count += *c == SANDBOX_ARGV_SEPARATOR;
        }
    }
    char **argv = calloc(count + 4, sizeof *argv);
    if (!argv) {
        return NULL;
    }
    size_t i = 0;
    if (count) {
        char *start = sandbox;
        for (char *c = sandbox;; c++) {
            if (*c == SANDBOX_ARGV_SEPARATOR || *c == '\0') {
                int last = *c == '\0';
                *c = '\0';
                argv[i++] = start;
                start = c + 1;
                if (last) {
                    break;
                }
            }
        }
    }
    argv[i++] = SHELL;
    argv[i++] = "-c";
    argv[i++] = (char *)command;
    argv[i] = NULL;
    return argv;
}

static int run_command(const char *command) {
    char *report = take_env(RUSAGE_FILE_ENV);
    char *limits = take_env(LIMITS_ENV);
    char *group = take_env(GROUP_ENV);
    char *sandbox = take_env(SANDBOX_ARGV_ENV);
    int with_prefix = sandbox && *sandbox;
    char **argv = command_argv(sandbox, command);
    if (!argv) {
        perror("stage-shell: argv");
        return 127;
    }
    /* For the prefix: this executable, which the sandbox runs inside as its PID 1 (`--init`, which closes it). */
    int self = with_prefix ? open("/proc/self/exe", O_RDONLY | O_CLOEXEC) : -1;
    if (with_prefix && self < 0) {
        perror("stage-shell: /proc/self/exe");
        return 127;
    }
    char own_group[32];
    snprintf(own_group, sizeof own_group, "%d", (int)getpgrp());
    if (group && strcmp(group, own_group) == 0) {
        /* DVC dying (a SIGKILL from the worker's death, or from a stop) takes the whole group with it, grandchildren
           included; the command's own death signal covers only the shell. */
        signal(SIGHUP, kill_own_group);
        if (prctl(PR_SET_PDEATHSIG, SIGHUP, 0, 0, 0) == 0 && getppid() != getpgrp()) {
            /* DVC leads the group and is our parent: it died before the death signal was armed. */
            kill_own_group(0);
        }
    }
    /* Like a shell waiting for its foreground job: let the command handle these and report how it ended. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    double started = now();
    char line[512];
    if (report) {
        snprintf(line, sizeof line, "{\"started\": %.6f}\n", started);
        append(report, line);
    }
    /* The command sees the shell that runs it, not this wrapper. */
    setenv("SHELL", SHELL, 1);
    pid_t wrapper = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < sizeof reset_in_child / sizeof reset_in_child[0]; i++) {
            signal(reset_in_child[i], SIG_DFL);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        /* dup2 clears close-on-exec; on SELF_FD already (the usual case: 0-2 are taken), clear it by hand. */
        int handed = self < 0 || (self == SELF_FD ? fcntl(self, F_SETFD, 0) : dup2(self, SELF_FD)) >= 0;
        if (handed && (!limits || apply_limits(limits) == 0) && getppid() == wrapper) {
            execvp(argv[0], argv);
            fprintf(stderr, "stage-shell: cannot run %s: %s\n", argv[0], strerror(errno));
        }
        _exit(127);
    }
    if (pid < 0) {
        perror("stage-shell: fork");
        return 127;
    }
    if (self >= 0) {
        close(self);
    }
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    while (wait4(pid, &status, 0, &usage) < 0) {
        if (errno != EINTR) {
            perror("stage-shell: wait4");
            return 127;
        }
    }
    int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    if (report) {
        double ended = now();
        snprintf(line, sizeof line,
                 "{\"started\": %.6f, \"ended\": %.6f, \"exit_code\": %d, \"maxrss_kib\": %ld, \"utime\": %.6f, "
                 "\"stime\": %.6f}\n",
                 started, ended, code, usage.ru_maxrss,
                 (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6,
                 (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6);
        append(report, line);
    }
    return code;
}

/* --init: PID 1 of the sandbox's PID namespace (see the top of this file). */
static volatile pid_t init_child = 0;
static const int passed_on[] = {SIGTERM, SIGINT, SIGHUP};

static void pass_on(int signum) {
    if (init_child > 0) {
        kill(init_child, signum);
    }
}

static void die(const char *what) {
    fprintf(stderr, "stage-shell: %s: %s\n", what, strerror(errno));
    _exit(127);
}

/* In the child, as root: give the pipes away, then drop to `uid` for good. Any failure ends the child (127) before
   the command runs: it never runs with more than it should. */
static void become(uid_t uid) {
    for (int fd = 1; fd <= 2; fd++) {
        /* Pipes only (the worker's, root's, 0600: `> /dev/stderr` reopens them); a file or /dev/null keeps its
           owner. */
        struct stat info;
        if (fstat(fd, &info) == 0 && S_ISFIFO(info.st_mode) && fchown(fd, uid, uid) != 0) {
            die("chown of an output pipe");
        }
    }
    if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0) {
        die("setgroups/setresgid");
    }
    /* The bounding set needs CAP_SETPCAP, so before the uid changes; EINVAL past the last capability the kernel has. */
    for (int cap = 0;; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) {
            continue;
        }
        if (errno == EINVAL && cap > 0) {
            break;
        }
        die("dropping the capability bounding set");
    }
    /* From root to a uid that is not: the kernel clears the permitted, effective and ambient sets. */
    if (setresuid(uid, uid, uid) != 0) {
        die("setresuid");
    }
    /* The inheritable set is not cleared by that: empty every set. */
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &header, none) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        die("capset/no_new_privs");
    }
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0 || r != uid || e != uid || s != uid ||
        rg != uid || eg != uid || sg != uid || setuid(0) == 0) {
        errno = EPERM;
        die("the user did not change");
    }
}

static int run_init(int argc, char **argv) {
    close(SELF_FD);
    int i = 2;
    long uid = -1;
    if (i < argc && strncmp(argv[i], "--uid=", 6) == 0) {
        char *end;
        errno = 0;
        uid = strtol(argv[i] + 6, &end, 10);
        if (errno || *end || uid <= 0 || uid > 0x7fffffff) {
            fprintf(stderr, "stage-shell: --init: bad %s\n", argv[i]);
            return 2;
        }
        i++;
    }
    if (i >= argc - 1 || strcmp(argv[i], "--") != 0) {
        fprintf(stderr, "usage: %s --init [--uid=N] -- PROGRAM ARGS...\n", argv[0]);
        return 2;
    }
    char **program = argv + i + 1;
    /* Like timeout --foreground as PID 1: these go to the command (nothing inside may signal PID 1 otherwise). */
    struct sigaction forward;
    memset(&forward, 0, sizeof forward);
    forward.sa_handler = pass_on;
    sigset_t held, before;
    sigemptyset(&held);
    for (size_t k = 0; k < sizeof passed_on / sizeof passed_on[0]; k++) {
        sigaction(passed_on[k], &forward, NULL);
        sigaddset(&held, passed_on[k]);
    }
    /* Held until the child's pid is known: one arriving meanwhile is passed on, not lost. */
    sigprocmask(SIG_BLOCK, &held, &before);
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t k = 0; k < sizeof passed_on / sizeof passed_on[0]; k++) {
            signal(passed_on[k], SIG_DFL);
        }
        sigprocmask(SIG_SETMASK, &before, NULL);
        if (uid >= 0) {
            become((uid_t)uid);
        }
        execvp(program[0], program);
        die(program[0]);
    }
    if (pid < 0) {
        perror("stage-shell: --init: fork");
        return 127;
    }
    init_child = pid;
    sigprocmask(SIG_SETMASK, &before, NULL);
    /* Reap whatever ends in the namespace (orphans are ours) until the command itself has. */
    for (;;) {
        int status;
        pid_t ended = wait(&status);
        if (ended == pid) {
            return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
        }
        if (ended < 0 && errno != EINTR) {
            perror("stage-shell: --init: wait");
            return 127;
        }
    }
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "-c") == 0) {
        return run_command(argv[2]);
    }
    if (argc >= 2 && strcmp(argv[1], "--init") == 0) {
        return run_init(argc, argv);
    }
    fprintf(stderr, "usage: %s -c COMMAND\n", argv[0]);
    return 2;
}
