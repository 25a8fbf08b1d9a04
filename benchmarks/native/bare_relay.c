/* The ceiling of any relay: a single-threaded epoll relay that reads each
 * length-prefixed frame (without looking at it), sends it upstream on a new
 * connection bound to the client's own IP (as the proxy does for loopback
 * clients), reads the length-prefixed reply, writes it back and closes both
 * connections: one RPC per connection, no verification, no policy, no Python.
 * What it costs is what two TCP connections per RPC cost; a proxy can only
 * add to it. Prints "port N" once listening; runs until SIGINT/SIGTERM.
 *
 *   bare_relay --upstream HOST:PORT [--port 0] [--host 127.0.0.1]
 *
 * Build: cc -std=c99 -O2 bare_relay.c -o bare_relay */
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
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_FD 65536
#define BUF 65536

enum { READ_REQ, CONNECTING, READ_REP, WRITE_REP };

typedef struct {
    int cfd, ufd, state;
    size_t have, need, off;
    struct sockaddr_in peer;
    uint8_t buf[BUF];
} relay_t;

static relay_t *g_by_fd[MAX_FD];   /* client and upstream fds both map to their relay */
static volatile sig_atomic_t g_stop;
static struct sockaddr_in g_up;
static int g_ep;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void finish(relay_t *r)
{
    if (r->ufd >= 0) {
        g_by_fd[r->ufd] = NULL;
        close(r->ufd);
    }
    g_by_fd[r->cfd] = NULL;
    close(r->cfd);
    free(r);
}

/* Read into r->buf from fd until a whole length-prefixed frame is in:
 * 1 complete, 0 not yet, -1 closed/error/too large. */
static int read_frame(relay_t *r, int fd)
{
    for (;;) {
        ssize_t n;
        if (r->have >= 4 && r->need == 0) {
            uint32_t total = (uint32_t)r->buf[0] << 24 | (uint32_t)r->buf[1] << 16 |
                             (uint32_t)r->buf[2] << 8 | r->buf[3];
            if (total > BUF - 4)
                return -1;
            r->need = 4 + total;
        }
        if (r->need && r->have >= r->need)
            return 1;
        n = recv(fd, r->buf + r->have, (r->need ? r->need : 4) - r->have, 0);
        if (n > 0)
            r->have += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && errno == EAGAIN)
            return 0;
        else
            return -1;
    }
}

/* Write r->buf[off .. need) to fd: 1 all written, 0 would block, -1 error. */
static int write_out(relay_t *r, int fd)
{
    while (r->off < r->need) {
        ssize_t n = send(fd, r->buf + r->off, r->need - r->off, MSG_NOSIGNAL);
        if (n > 0)
            r->off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && errno == EAGAIN)
            return 0;
        else
            return -1;
    }
    return 1;
}

static int start_upstream(relay_t *r)
{
    struct epoll_event ev;
    struct sockaddr_in src = r->peer;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || fd >= MAX_FD) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    r->ufd = fd;
    g_by_fd[fd] = r;
    src.sin_port = 0;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&g_up, sizeof(g_up)) != 0 && errno != EINPROGRESS)
        return -1;
    r->state = CONNECTING;
    r->off = 0;
    ev.events = 0;               /* the client has nothing more to say until the reply */
    ev.data.fd = r->cfd;
    epoll_ctl(g_ep, EPOLL_CTL_MOD, r->cfd, &ev);
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.fd = fd;
    return epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
}

static void step(relay_t *r, int fd)
{
    int rc;
    struct epoll_event ev;
    switch (r->state) {
    case READ_REQ:
        rc = read_frame(r, r->cfd);
        if (rc < 0 || (rc == 1 && start_upstream(r) != 0))
            finish(r);
        return;
    case CONNECTING:
        if (fd != r->ufd)
            return;
        rc = write_out(r, r->ufd);
        if (rc < 0) {
            finish(r);
        } else if (rc == 1) {
            r->state = READ_REP;
            r->have = r->need = 0;
            ev.events = EPOLLIN;
            ev.data.fd = r->ufd;
            epoll_ctl(g_ep, EPOLL_CTL_MOD, r->ufd, &ev);
        }
        return;
    case READ_REP:
        if (fd != r->ufd)
            return;
        rc = read_frame(r, r->ufd);
        if (rc < 0) {
            finish(r);
            return;
        }
        if (rc == 0)
            return;
        g_by_fd[r->ufd] = NULL;
        close(r->ufd);
        r->ufd = -1;
        r->off = 0;
        r->state = WRITE_REP;
        /* most replies fit the socket buffer at once */
        /* fall through */
    case WRITE_REP:
        rc = write_out(r, r->cfd);
        if (rc != 0) {
            finish(r);
        } else {
            ev.events = EPOLLOUT;
            ev.data.fd = r->cfd;
            epoll_ctl(g_ep, EPOLL_CTL_MOD, r->cfd, &ev);
        }
        return;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in a;
    struct epoll_event ev, evs[256];
    const char *host = "127.0.0.1", *up = NULL;
    int port = 0, lfd, one = 1, i;
    socklen_t al = sizeof(a);

    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--upstream"))
            up = argv[i + 1];
        else if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--host"))
            host = argv[i + 1];
    }
    if (!up || !strchr(up, ':')) {
        fprintf(stderr, "usage: bare_relay --upstream HOST:PORT [--port N] [--host H]\n");
        return 2;
    }
    memset(&g_up, 0, sizeof(g_up));
    g_up.sin_family = AF_INET;
    g_up.sin_port = htons((uint16_t)atoi(strrchr(up, ':') + 1));
    *strrchr(up, ':') = '\0';
    if (inet_pton(AF_INET, up, &g_up.sin_addr) != 1) {
        fprintf(stderr, "bad upstream address\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &a.sin_addr);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
        perror("listen");
        return 1;
    }
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    while (!g_stop) {
        int n = epoll_wait(g_ep, evs, 256, 200);
        for (i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    struct sockaddr_in peer;
                    socklen_t pl = sizeof(peer);
                    relay_t *r;
                    int cfd = accept4(lfd, (struct sockaddr *)&peer, &pl,
                                      SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0)
                        break;
                    r = cfd < MAX_FD ? malloc(sizeof(*r)) : NULL;
                    if (!r) {
                        close(cfd);
                        continue;
                    }
                    r->cfd = cfd;
                    r->ufd = -1;
                    r->state = READ_REQ;
                    r->have = r->need = r->off = 0;
                    r->peer = peer;
                    g_by_fd[cfd] = r;
                    ev.events = EPOLLIN;
                    ev.data.fd = cfd;
                    epoll_ctl(g_ep, EPOLL_CTL_ADD, cfd, &ev);
                    step(r, cfd);   /* the frame is usually there already */
                }
            } else if (g_by_fd[fd]) {
                step(g_by_fd[fd], fd);
            }
        }
    }
    return 0;
}
