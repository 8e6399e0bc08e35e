/* boxproxy WASI shim: WASI preview1 has no dynamic loading; dlopen() always fails (see wasi_shim.c). */
#ifndef BOXPROXY_WASI_DLFCN_H
#define BOXPROXY_WASI_DLFCN_H
#define RTLD_LAZY 1
#define RTLD_NOW 2
#define RTLD_LOCAL 0
#define RTLD_GLOBAL 256
void *dlopen(const char *filename, int flags);
void *dlsym(void *handle, const char *symbol);
int dlclose(void *handle);
char *dlerror(void);
#endif
