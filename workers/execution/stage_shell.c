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
 * C rather than Python because it starts for every stage command: about 1 ms, against 25-30 ms for an interpreter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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
    char **argv = command_argv(sandbox, command);
    if (!argv) {
        perror("stage-shell: argv");
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
        if ((!limits || apply_limits(limits) == 0) && getppid() == wrapper) {
            execvp(argv[0], argv);
            fprintf(stderr, "stage-shell: cannot run %s: %s\n", argv[0], strerror(errno));
        }
        _exit(127);
    }
    if (pid < 0) {
        perror("stage-shell: fork");
        return 127;
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

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "-c") == 0) {
        return run_command(argv[2]);
    }
    fprintf(stderr, "usage: %s -c COMMAND\n", argv[0]);
    return 2;
}
