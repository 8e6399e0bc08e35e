/* boxproxy WASI shim, force-included (-include) into QuickJS's sources when building for wasm32-wasi.
 * WASI preview1 has no processes, pipes, terminals or dynamic loading, and bookworm's wasi-libc (2022) has no
 * realpath(): the POSIX calls quickjs-libc.c makes for those are declared here and defined in wasi_shim.c,
 * where they fail with ENOSYS (realpath is a real implementation over readlink). */
#ifndef BOXPROXY_WASI_SHIM_H
#define BOXPROXY_WASI_SHIM_H
#include <stdio.h>
#include <sys/types.h>

struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; };
#define TIOCGWINSZ 0x5413

char *realpath(const char *path, char *resolved);
FILE *popen(const char *command, const char *mode);
FILE *tmpfile(void);
int pclose(FILE *stream);
pid_t fork(void);
int execve(const char *path, char *const argv[], char *const envp[]);
int execv(const char *path, char *const argv[]);
int execvp(const char *file, char *const argv[]);
int dup(int fd);
int dup2(int fd, int fd2);
int pipe(int fds[2]);
int kill(pid_t pid, int sig);
int setuid(uid_t uid);
int setgid(gid_t gid);
int ioctl(int fd, int request, ...);
#endif
