/* boxproxy WASI shim: see include/wasi_shim.h. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <termios.h>
#include <sys/wait.h>
#include <dlfcn.h>
#include "wasi_shim.h"

#define NOSYS(decl, value) decl { errno = ENOSYS; return value; }
NOSYS(FILE *popen(const char *command, const char *mode), NULL)
NOSYS(int pclose(FILE *stream), -1)
NOSYS(FILE *tmpfile(void), NULL)
NOSYS(pid_t fork(void), -1)
NOSYS(int execve(const char *path, char *const argv[], char *const envp[]), -1)
NOSYS(int execv(const char *path, char *const argv[]), -1)
NOSYS(int execvp(const char *file, char *const argv[]), -1)
NOSYS(int dup(int fd), -1)
NOSYS(int dup2(int fd, int fd2), -1)
NOSYS(int pipe(int fds[2]), -1)
NOSYS(int kill(pid_t pid, int sig), -1)
NOSYS(int setuid(uid_t uid), -1)
NOSYS(int setgid(gid_t gid), -1)
NOSYS(pid_t waitpid(pid_t pid, int *status, int options), -1)
NOSYS(void *dlopen(const char *filename, int flags), NULL)
NOSYS(void *dlsym(void *handle, const char *symbol), NULL)
NOSYS(int dlclose(void *handle), -1)
char *dlerror(void) { return "dynamic loading is not available under WASI"; }
int tcgetattr(int fd, struct termios *t) { (void)fd; (void)t; errno = ENOTTY; return -1; }
int tcsetattr(int fd, int action, const struct termios *t) { (void)fd; (void)action; (void)t; errno = ENOTTY; return -1; }
int ioctl(int fd, int request, ...) { (void)fd; (void)request; errno = ENOTTY; return -1; }

static int resolve_into(char *out, const char *path, int depth);

/* Appends one component to `out` (an absolute path), following it when it is a symlink. */
static int append_component(char *out, const char *name, size_t len, int depth)
{
    if (len == 0 || (len == 1 && name[0] == '.'))
        return 0;
    if (len == 2 && name[0] == '.' && name[1] == '.') {
        char *slash = strrchr(out, '/');
        if (slash == out) out[1] = '\0'; else *slash = '\0';
        return 0;
    }
    size_t n = strlen(out);
    if (n + (n > 1) + len >= PATH_MAX) { errno = ENAMETOOLONG; return -1; }
    char saved[PATH_MAX];
    memcpy(saved, out, n + 1);
    if (n > 1) out[n++] = '/';
    memcpy(out + n, name, len);
    out[n + len] = '\0';
    char link[PATH_MAX];
    ssize_t r = readlink(out, link, sizeof(link) - 1);
    if (r < 0)
        return errno == EINVAL ? 0 : -1;   /* EINVAL: not a symlink */
    if (depth >= 40) { errno = ELOOP; return -1; }
    link[r] = '\0';
    memcpy(out, saved, strlen(saved) + 1);
    if (link[0] == '/') strcpy(out, "/");
    return resolve_into(out, link, depth + 1);
}

static int resolve_into(char *out, const char *path, int depth)
{
    const char *p = path;
    while (*p) {
        while (*p == '/') p++;
        const char *end = p;
        while (*end && *end != '/') end++;
        if (append_component(out, p, (size_t)(end - p), depth) < 0) return -1;
        p = end;
    }
    return 0;
}

char *realpath(const char *path, char *resolved)
{
    char out[PATH_MAX];
    if (!path) { errno = EINVAL; return NULL; }
    if (path[0] == '/') strcpy(out, "/");
    else if (!getcwd(out, sizeof(out))) return NULL;
    if (resolve_into(out, path, 0) < 0) return NULL;
    if (access(out, F_OK) < 0) return NULL;
    if (!resolved) return strdup(out);
    strcpy(resolved, out);
    return resolved;
}
