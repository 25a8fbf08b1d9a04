/* Load generator for Slurm RPC servers: N processes, each sending one frame
 * per connection (as Slurm clients do; --persistent reuses one connection)
 * and reading the length-prefixed reply, for a bounded time. Prints one JSON
 * line:
 *   {"procs":4,"seconds":3.001,"rps":12345.6,"ok":...,"closed":...,
 *    "errors":...,"rc_mismatch":...}
 * ok: a whole reply came back; closed: the server closed (or reset) without a
 * reply (a shed request); errors: connect/send failures or timeouts. rps counts
 * ok + closed (exchanges completed).
 *
 *   loadgen --frame FILE (--tcp HOST:PORT | --unix PATH) [--procs 4]
 *           [--seconds 3] [--persistent] [--bind IP] [--expect-rc N]
 *
 * Build: cc -std=c99 -O2 loadgen.c -o loadgen */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

typedef struct {
    uint64_t ok, closed, errors, rc_mismatch;
} counts_t;

static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static struct sockaddr_in g_bind;
static int g_use_bind;
static uint8_t *g_frame;
static size_t g_frame_len;
static long g_expect_rc = -1;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_conn(void)
{
    int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {2, 0};
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (g_use_bind) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&g_bind, sizeof(g_bind)) != 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&g_addr, g_addrlen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 1: whole reply, 0: closed without (a whole) reply, -1: error/timeout */
static int read_reply(int fd, counts_t *c)
{
    uint8_t buf[65536], head[24];
    size_t have = 0, need = 4;
    while (have < need) {
        size_t want = need - have;
        ssize_t r = recv(fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE)))
            return 0;
        if (r < 0)
            return -1;
        if (have < sizeof(head))
            memcpy(head + have, buf, (size_t)r < sizeof(head) - have ? (size_t)r : sizeof(head) - have);
        have += (size_t)r;
        if (need == 4 && have >= 4)
            need = 4 + (size_t)((uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
                                (uint32_t)head[2] << 8 | head[3]);
    }
    if (g_expect_rc >= 0) {
        /* RESPONSE_SLURM_RC without an auth section: rc is the last 4 bytes */
        if (need != 24 || ((uint32_t)head[20] << 24 | (uint32_t)head[21] << 16 |
                           (uint32_t)head[22] << 8 | head[23]) != (uint32_t)g_expect_rc)
            c->rc_mismatch++;
    }
    return 1;
}

static void worker(double seconds, int persistent, int out_fd)
{
    counts_t c;
    double end = now_s() + seconds;
    int fd = -1;
    memset(&c, 0, sizeof(c));
    while (now_s() < end) {
        int r;
        if (fd < 0) {
            fd = open_conn();
            if (fd < 0) {
                c.errors++;
                continue;
            }
        }
        /* a server that refused early may close while we still send: read anyway */
        (void)send_all(fd, g_frame, g_frame_len);
        r = read_reply(fd, &c);
        if (r == 1)
            c.ok++;
        else if (r == 0)
            c.closed++;
        else
            c.errors++;
        if (!persistent || r != 1) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    if (write(out_fd, &c, sizeof(c)) != (ssize_t)sizeof(c))
        _exit(1);
    _exit(0);
}

static int parse_target(const char *tcp, const char *unix_path)
{
    memset(&g_addr, 0, sizeof(g_addr));
    if (unix_path) {
        struct sockaddr_un *a = (struct sockaddr_un *)&g_addr;
        if (strlen(unix_path) >= sizeof(a->sun_path))
            return -1;
        a->sun_family = AF_UNIX;
        strcpy(a->sun_path, unix_path);
        g_addrlen = sizeof(*a);
        return 0;
    }
    if (tcp) {
        char host[256];
        const char *colon = strrchr(tcp, ':');
        struct sockaddr_in *a = (struct sockaddr_in *)&g_addr;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&g_addr;
        size_t hl;
        if (!colon)
            return -1;
        hl = (size_t)(colon - tcp);
        if (hl >= sizeof(host))
            return -1;
        memcpy(host, tcp, hl);
        host[hl] = 0;
        if (hl >= 2 && host[0] == '[') {
            memmove(host, host + 1, hl - 2);
            host[hl - 2] = 0;
        }
        if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
            a->sin_family = AF_INET;
            a->sin_port = htons((uint16_t)atoi(colon + 1));
            g_addrlen = sizeof(*a);
        } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons((uint16_t)atoi(colon + 1));
            g_addrlen = sizeof(*a6);
        } else {
            return -1;
        }
        return 0;
    }
    return -1;
}

static int read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    g_frame = malloc((size_t)n);
    if (!g_frame || fread(g_frame, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    g_frame_len = (size_t)n;
    fclose(f);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --frame FILE (--tcp HOST:PORT | --unix PATH) [--procs N] "
                    "[--seconds S] [--persistent] [--bind IP] [--expect-rc N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *frame = NULL, *tcp = NULL, *unix_path = NULL, *bind_ip = NULL;
    int procs = 4, persistent = 0, k, pipefd[2];
    double seconds = 3.0, t0, t1;
    counts_t total;
    pid_t *pids;

    for (k = 1; k < argc; k++) {
        const char *a = argv[k];
        const char *v = k + 1 < argc ? argv[k + 1] : NULL;
        if (!strcmp(a, "--persistent")) {
            persistent = 1;
            continue;
        }
        if (!v)
            usage();
        if (!strcmp(a, "--frame"))
            frame = v;
        else if (!strcmp(a, "--tcp"))
            tcp = v;
        else if (!strcmp(a, "--unix"))
            unix_path = v;
        else if (!strcmp(a, "--procs"))
            procs = atoi(v);
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--bind"))
            bind_ip = v;
        else if (!strcmp(a, "--expect-rc"))
            g_expect_rc = atol(v);
        else
            usage();
        k++;
    }
    if (!frame || (!tcp == !unix_path) || procs < 1 || procs > 256 || seconds <= 0 ||
        seconds > 60)
        usage();
    if (read_file(frame) != 0) {
        fprintf(stderr, "loadgen: cannot read %s\n", frame);
        return 2;
    }
    if (parse_target(tcp, unix_path) != 0) {
        fprintf(stderr, "loadgen: bad target\n");
        return 2;
    }
    if (bind_ip) {
        memset(&g_bind, 0, sizeof(g_bind));
        g_bind.sin_family = AF_INET;
        if (inet_pton(AF_INET, bind_ip, &g_bind.sin_addr) != 1 || g_addr.ss_family != AF_INET) {
            fprintf(stderr, "loadgen: --bind takes an IPv4 address (TCP over IPv4 only)\n");
            return 2;
        }
        g_use_bind = 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (pipe(pipefd) != 0)
        return 1;
    pids = calloc((size_t)procs, sizeof(*pids));
    if (!pids)
        return 1;
    t0 = now_s();
    for (k = 0; k < procs; k++) {
        pids[k] = fork();
        if (pids[k] == 0) {
            close(pipefd[0]);
            worker(seconds, persistent, pipefd[1]);
        }
        if (pids[k] < 0)
            return 1;
    }
    close(pipefd[1]);
    memset(&total, 0, sizeof(total));
    for (k = 0; k < procs; k++) {
        counts_t c;
        if (read(pipefd[0], &c, sizeof(c)) != (ssize_t)sizeof(c))
            break;
        total.ok += c.ok;
        total.closed += c.closed;
        total.errors += c.errors;
        total.rc_mismatch += c.rc_mismatch;
    }
    for (k = 0; k < procs; k++)
        waitpid(pids[k], NULL, 0);
    t1 = now_s();
    printf("{\"procs\":%d,\"seconds\":%.3f,\"rps\":%.1f,\"ok\":%llu,\"closed\":%llu,"
           "\"errors\":%llu,\"rc_mismatch\":%llu,\"persistent\":%s}\n",
           procs, t1 - t0, (double)(total.ok + total.closed) / (t1 - t0),
           (unsigned long long)total.ok, (unsigned long long)total.closed,
           (unsigned long long)total.errors, (unsigned long long)total.rc_mismatch,
           persistent ? "true" : "false");
    free(pids);
    free(g_frame);
    return 0;
}
