/* boxproxy WASI shim: WASI preview1 has no terminal control; tcgetattr()/tcsetattr() fail with ENOTTY. */
#ifndef BOXPROXY_WASI_TERMIOS_H
#define BOXPROXY_WASI_TERMIOS_H
typedef unsigned int tcflag_t;
typedef unsigned char cc_t;
#define NCCS 32
struct termios { tcflag_t c_iflag, c_oflag, c_cflag, c_lflag; cc_t c_cc[NCCS]; };
#define IGNBRK 1
#define BRKINT 2
#define PARMRK 8
#define ISTRIP 32
#define INLCR 64
#define IGNCR 128
#define ICRNL 256
#define IXON 1024
#define OPOST 1
#define ECHO 8
#define ECHONL 64
#define ICANON 2
#define ISIG 1
#define IEXTEN 32768
#define CSIZE 48
#define PARENB 256
#define CS8 48
#define VMIN 6
#define VTIME 5
#define TCSANOW 0
int tcgetattr(int fd, struct termios *t);
int tcsetattr(int fd, int action, const struct termios *t);
#endif
