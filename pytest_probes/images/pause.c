/*
 * pause: the sandbox ("infra") process of a pod, for pytest-probes' local provider.
 *
 * It holds the pod's namespaces open and does nothing else: it blocks in pause(), exits 0 on
 * SIGINT or SIGTERM, and reaps every child that is re-parented to it (it is PID 1 when the pod
 * shares its process namespace). Built by images.py with `gcc -static -Os`, so the image needs no
 * libc. `pause -v` prints its version and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "pytest-probes-pause 3.10"

static void say(const char *text) {
    ssize_t ignored = write(STDOUT_FILENO, text, strlen(text));
    (void)ignored;
}

static void on_stop(int signo) {
    (void)signo;
    say("pause: shutting down\n");
    _exit(0);
}

static void on_child(int signo) {
    int saved = errno;
    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int handle(int signo, void (*handler)(int), int flags) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    return sigaction(signo, &action, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
        say(VERSION "\n");
        return 0;
    }
    if (handle(SIGINT, on_stop, 0) < 0 || handle(SIGTERM, on_stop, 0) < 0 ||
        handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0) {
        say("pause: cannot install signal handlers\n");
        return 1;
    }
    /* Children may have ended before the handler was installed (e.g. after `exec pause`). */
    on_child(SIGCHLD);
    for (;;) {
        pause();
    }
    return 42; /* not reached */
}
