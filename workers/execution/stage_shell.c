/*
 * The stage shell, compiled: the same program as stage_shell.py (read its docstring for what it does and why),
 * without an interpreter's start-up. DVC runs it once per stage command, so its start-up is paid on every stage:
 * about 1 ms here against 25-30 ms for `python -IS stage_shell.py` (more on a busy machine).
 *
 * shell.py compiles this file with the system's C compiler when the worker first needs the stage shell, and falls
 * back to stage_shell.py when there is none (or STAGE_SHELL=python). Both write the same usage lines and take the
 * same environment variables; tests/execution runs the launcher tests with each.
 *
 *   stage-shell -c COMMAND          (behind the prefix in $STAGE_SANDBOX_ARGV when set)
 *   stage-shell --exec PARENT_PID PROGRAM [ARG...]
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
/* A prefix for the command (the stage's sandbox, workers/sandbox/): arguments separated by the ASCII unit separator. */
#define SANDBOX_ENV "STAGE_SANDBOX_ARGV"
#define SANDBOX_SEPARATOR '\x1f'
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

/* The argv to exec: the sandbox prefix (split in place), then SHELL -c COMMAND. NULL when out of memory. */
static char **command_argv(char *sandbox, const char *command) {
    size_t count = 3;
    if (sandbox && !*sandbox) {
        sandbox = NULL;
    }
    if (sandbox) {
        count += 1;
        for (const char *p = sandbox; *p; p++) {
            count += *p == SANDBOX_SEPARATOR;
        }
    }
    char **argv = calloc(count + 1, sizeof *argv);
    if (!argv) {
        return NULL;
    }
    size_t n = 0;
    if (sandbox) {
        argv[n++] = sandbox;
        for (char *p = sandbox; *p; p++) {
            if (*p == SANDBOX_SEPARATOR) {
                *p = '\0';
                argv[n++] = p + 1;
            }
        }
    }
    argv[n++] = SHELL;
    argv[n++] = "-c";
    argv[n++] = (char *)command;
    argv[n] = NULL;
    return argv;
}

static int run_command(const char *command) {
    char *report = take_env(RUSAGE_FILE_ENV);
    char *limits = take_env(LIMITS_ENV);
    char **argv = command_argv(take_env(SANDBOX_ENV), command);
    if (!argv) {
        perror("stage-shell: argv");
        return 127;
    }
    char *group = take_env(GROUP_ENV);
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
            execv(argv[0], argv);
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

static int exec_guarded(const char *parent, char **argv) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if ((long)getppid() != strtol(parent, NULL, 10)) {
        /* The parent died before the death signal was armed. */
        _exit(128 + SIGKILL);
    }
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_DFL);
    char own_group[32];
    snprintf(own_group, sizeof own_group, "%d", (int)getpgrp());
    setenv(GROUP_ENV, own_group, 1);
    execv(argv[0], argv);
    perror("stage-shell: exec");
    return 127;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "-c") == 0) {
        return run_command(argv[2]);
    }
    if (argc >= 4 && strcmp(argv[1], "--exec") == 0) {
        return exec_guarded(argv[2], argv + 3);
    }
    fprintf(stderr, "usage: %s -c COMMAND | --exec PARENT_PID PROGRAM [ARG...]\n", argv[0]);
    return 2;
}
