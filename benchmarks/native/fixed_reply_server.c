/* The loopback-limit reference: a single-threaded epoll server that reads
 * each length-prefixed frame (without looking at it) and answers it with
 * fixed bytes (a 24-byte RESPONSE_SLURM_RC, rc 0, as slurmctld replies to a
 * ping), then closes the connection (one RPC per connection; --keep reads
 * the next frame instead). Prints "port N" (or "unix PATH") once listening;
 * runs until SIGINT/SIGTERM or --seconds.
 *
 *   fixed_reply_server [--port 0] [--host 127.0.0.1] [--unix PATH] [--keep] [--seconds S]
 *
 * Build: cc -std=c99 -O2 fixed_reply_server.c -o fixed_reply_server */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 65536

static const uint8_t REPLY[24] = {0, 0, 0, 20, 0x2D, 0x00, 0x00, 0x44, 0x1F, 0x41, 0, 0, 0, 4,
                                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

typedef struct {
    uint32_t have;      /* bytes of the current frame read (prefix included) */
    uint32_t need;      /* 4 + total_len once the prefix is in, else 4 */
    uint8_t prefix[4];
} conn_t;

static conn_t g_conns[MAX_FD];
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void drop(int fd)
{
    close(fd);   /* the last reference: epoll forgets it by itself */
}

/* returns 1 when the connection is done (closed). One recv takes whatever
 * is there (up to 64 KiB): the prefix and usually the whole frame. */
static int on_readable(int fd, int keep)
{
    conn_t *c = &g_conns[fd];
    uint8_t buf[65536];
    for (;;) {
        size_t want = c->need > c->have ? c->need - c->have : 0;
        ssize_t r;
        uint32_t k;
        if (c->have < 4 || want > sizeof(buf))
            want = sizeof(buf);
        r = recv(fd, buf, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 0;
        if (r <= 0) {
            drop(fd);
            return 1;
        }
        for (k = 0; c->have < 4 && k < (uint32_t)r; k++)
            c->prefix[c->have++] = buf[k];
        c->have += (uint32_t)r - k;
        if (c->need == 4 && c->have >= 4) {
            uint32_t total = (uint32_t)c->prefix[0] << 24 | (uint32_t)c->prefix[1] << 16 |
                             (uint32_t)c->prefix[2] << 8 | c->prefix[3];
            if (total > (1u << 30)) {
                drop(fd);
                return 1;
            }
            c->need = 4 + total;
        }
        if (c->have >= 4 && c->have >= c->need) {
            /* (a pipelined next frame in the same read is not parsed: one RPC
             * per connection, or one frame at a time with --keep) */
            if (send(fd, REPLY, sizeof(REPLY), MSG_NOSIGNAL) != (ssize_t)sizeof(REPLY) || !keep) {
                drop(fd);
                return 1;
            }
            c->have = 0;
            c->need = 4;
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *unix_path = NULL;
    int port = 0, keep = 0, k, lfd, ep, one = 1;
    double seconds = 0;
    struct epoll_event ev, evs[256];
    time_t end;

    for (k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--keep"))
            keep = 1;
        else if (k + 1 < argc && !strcmp(argv[k], "--port"))
            port = atoi(argv[++k]);
        else if (k + 1 < argc && !strcmp(argv[k], "--host"))
            host = argv[++k];
        else if (k + 1 < argc && !strcmp(argv[k], "--unix"))
            unix_path = argv[++k];
        else if (k + 1 < argc && !strcmp(argv[k], "--seconds"))
            seconds = atof(argv[++k]);
        else {
            fprintf(stderr, "usage: fixed_reply_server [--port N] [--host IP] [--unix PATH] "
                            "[--keep] [--seconds S]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (unix_path) {
        struct sockaddr_un a;
        memset(&a, 0, sizeof(a));
        a.sun_family = AF_UNIX;
        if (strlen(unix_path) >= sizeof(a.sun_path))
            return 2;
        strcpy(a.sun_path, unix_path);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            perror("bind");
            return 1;
        }
    } else {
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
            return 2;
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
            perror("bind");
            return 1;
        }
        port = ntohs(a.sin_port);
    }
    if (listen(lfd, 4096) != 0) {
        perror("listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    if (unix_path)
        printf("unix %s\n", unix_path);
    else
        printf("port %d\n", port);
    fflush(stdout);
    end = seconds > 0 ? time(NULL) + (time_t)seconds + 1 : 0;
    while (!g_stop && (!end || time(NULL) < end)) {
        int n = epoll_wait(ep, evs, 256, 200), i;
        for (i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0)
                        break;
                    if (c >= MAX_FD) {
                        close(c);
                        continue;
                    }
                    g_conns[c].have = 0;
                    g_conns[c].need = 4;
                    ev.events = EPOLLIN;
                    ev.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
            } else {
                on_readable(fd, keep);
            }
        }
    }
    close(lfd);
    if (unix_path)
        unlink(unix_path);
    return 0;
}
