/*
 * diff_host.c: a differential check of mm-sim against the kernel this
 * program runs on, through the C API.
 *
 * 1. Reserve a region of this process with a real mmap(PROT_NONE).
 * 2. Start a model configured as this process (mm_sim_new_host) from its
 *    own /proc/self/maps, break and stack.
 * 3. Run the same calls inside the region on the kernel and on the model:
 *    mmap(MAP_FIXED) of anonymous memory and of a file, mprotect, munmap,
 *    mremap, madvise, open/close, and accesses (a real load or store, with
 *    SIGSEGV/SIGBUS caught, against mm_sim_fault), failing ones included.
 *    Compare every result and errno, and after every call the maps lines
 *    of the region: /proc/self/maps against mm_sim_maps.
 *
 * Exit 0 only if everything matches; otherwise print what differs and exit
 * 1 (2 if the check could not run). MM_SIM_DIFF_SABOTAGE=1 gives the model
 * (only) a wrong protection in the first mmap, to show that a difference is
 * caught. MM_SIM_DIFF_DIR=DIR puts the temporary file in DIR.
 *
 * Build: cargo build -p mm-capi, then
 *   gcc -std=c11 -Wall -Wextra -I crates/mm-capi/include \
 *       crates/mm-capi/examples/c/diff_host.c target/debug/libmm_capi.a \
 *       -lpthread -ldl -lm -o diff_host
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mm_sim.h"

#define PAGE 4096UL
/* The region: a guard page, 32 pages to work in, a guard page. */
#define REGION_PAGES 34UL

static MmSim *sim;
static uint64_t base;   /* the reservation's start */
static uint64_t R;      /* the working area: base + 1 page */
static int checks, failures, sabotage;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("DIFF  ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    failures++;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* The lines of a maps text that overlap the reservation, joined. */
static char *region_lines(const char *maps) {
    size_t cap = strlen(maps) + 1, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (const char *l = maps; *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);
        unsigned long long s, e;
        if (sscanf(l, "%llx-%llx", &s, &e) == 2 && e > base && s < base + REGION_PAGES * PAGE) {
            memcpy(out + len, l, n);
            len += n;
            out[len] = '\0';
        }
        l += n;
    }
    return out;
}

/* Compares the region's lines in /proc/self/maps and in the model. */
static void compare_maps(const char *after) {
    char *host_maps = read_file("/proc/self/maps");
    char *model_maps = mm_sim_maps(sim);
    if (!host_maps || !model_maps) {
        fail("after %s: cannot read maps (%s)", after, model_maps ? "host" : mm_sim_last_error(sim));
        free(host_maps);
        mm_sim_string_free(model_maps);
        return;
    }
    char *h = region_lines(host_maps), *m = region_lines(model_maps);
    checks++;
    if (!h || !m || strcmp(h, m) != 0)
        fail("after %s: maps of the region differ\n  kernel:\n%s  model:\n%s", after, h ? h : "?",
             m ? m : "?");
    free(h);
    free(m);
    free(host_maps);
    mm_sim_string_free(model_maps);
}

/* An errno's name (strerrorname_np is glibc 2.32+ only). */
static const char *err_name(int e) {
    static char other[2][32]; /* two calls may share one printf */
    static int k;
    switch (e) {
    case 0: return "0";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ETXTBSY: return "ETXTBSY";
    case EOVERFLOW: return "EOVERFLOW";
    default:
        k ^= 1;
        snprintf(other[k], sizeof other[k], "errno %d", e);
        return other[k];
    }
}

/* Compares (result, errno) of one call; a result counts only on success. */
static void compare(const char *what, int host_err, uint64_t host_val, int model_err,
                    uint64_t model_val) {
    checks++;
    if (host_err != model_err || (host_err == 0 && host_val != model_val))
        fail("%s: kernel %s %#" PRIx64 ", model %s %#" PRIx64 " (%s)", what, err_name(host_err),
             host_val, err_name(model_err), model_val,
             mm_sim_last_error(sim) ? mm_sim_last_error(sim) : "no error");
    else
        printf("ok    %-44s = %s\n", what, host_err ? err_name(host_err) : "0");
    compare_maps(what);
}

static void do_mmap(const char *what, uint64_t addr, uint64_t len, int prot, int flags, int hfd,
                    int64_t mfd, uint64_t off) {
    void *p = mmap((void *)addr, len, prot, flags, hfd, (off_t)off);
    int he = p == MAP_FAILED ? errno : 0;
    uint64_t ma = 0;
    if (sabotage) { /* the first mmap: the model gets PROT_READ instead */
        prot = PROT_READ;
        sabotage = 0;
    }
    int me = mm_sim_mmap(sim, addr, len, (uint64_t)prot, (uint64_t)flags, mfd, off, &ma);
    compare(what, he, (uint64_t)p, me, ma);
}

static void do_munmap(const char *what, uint64_t addr, uint64_t len) {
    int he = munmap((void *)addr, len) ? errno : 0;
    compare(what, he, 0, mm_sim_munmap(sim, addr, len), 0);
}

static void do_mprotect(const char *what, uint64_t addr, uint64_t len, int prot) {
    int he = mprotect((void *)addr, len, prot) ? errno : 0;
    compare(what, he, 0, mm_sim_mprotect(sim, addr, len, (uint64_t)prot), 0);
}

static void do_madvise(const char *what, uint64_t addr, uint64_t len, int advice) {
    int he = madvise((void *)addr, len, advice) ? errno : 0;
    compare(what, he, 0, mm_sim_madvise(sim, addr, len, (uint64_t)advice), 0);
}

static void do_mremap(const char *what, uint64_t old, uint64_t old_len, uint64_t new_len,
                      int flags, uint64_t new_addr) {
    void *p = mremap((void *)old, old_len, new_len, flags, (void *)new_addr);
    int he = p == MAP_FAILED ? errno : 0;
    uint64_t ma = 0;
    int me = mm_sim_mremap(sim, old, old_len, new_len, (uint64_t)flags, new_addr, &ma);
    compare(what, he, (uint64_t)p, me, ma);
}

/* A real access, SIGSEGV and SIGBUS caught: 0 or the signal. */
static sigjmp_buf jump;
static volatile sig_atomic_t caught;
static void on_signal(int sig) {
    caught = sig;
    siglongjmp(jump, 1);
}

static int real_access(uint64_t addr, int write) {
    struct sigaction sa, old_segv, old_bus;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    caught = 0;
    if (sigsetjmp(jump, 1) == 0) {
        if (write)
            *(volatile char *)addr = 1;
        else
            (void)*(volatile char *)addr;
    }
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    return caught;
}

static void do_access(const char *what, uint64_t addr, int write) {
    int hs = real_access(addr, write);
    int32_t ms = -1;
    int me = mm_sim_fault(sim, addr, write ? MM_SIM_ACCESS_WRITE : MM_SIM_ACCESS_READ, &ms);
    checks++;
    if (me != 0 || hs != ms)
        fail("%s: kernel signal %d, model signal %d (status %d)", what, hs, (int)ms, me);
    else
        printf("ok    %-44s = %s\n", what, hs ? strsignal(hs) : "no signal");
    compare_maps(what);
}

/* Field n (1-based, as proc_pid_stat(5) numbers them) of /proc/self/stat. */
static uint64_t stat_field(const char *stat, int n) {
    const char *p = strrchr(stat, ')');
    if (!p)
        return 0;
    p++;
    for (int f = 3; f <= n; f++) {
        while (*p == ' ')
            p++;
        if (f == n)
            return strtoull(p, NULL, 10);
        while (*p && *p != ' ')
            p++;
    }
    return 0;
}

int main(void) {
    sabotage = getenv("MM_SIM_DIFF_SABOTAGE") != NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* A file of 3 pages for file mappings: in $MM_SIM_DIFF_DIR, else on
     * tmpfs (/dev/shm) if there is one, else in /tmp. */
    const char *dirs[] = {getenv("MM_SIM_DIFF_DIR"), "/dev/shm", "/tmp"};
    static char file[4096];
    int hfd = -1;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && hfd < 0; i++) {
        if (!dirs[i] ||
            snprintf(file, sizeof file, "%s/mm_sim_diff_XXXXXX", dirs[i]) >= (int)sizeof file)
            continue;
        hfd = mkstemp(file);
    }
    if (hfd < 0 || ftruncate(hfd, 3 * PAGE) != 0) {
        perror("diff_host: temporary file");
        return 2;
    }
    close(hfd);

    /* 1. The region, and 2. the model, from this process's snapshot. */
    void *p = mmap(NULL, REGION_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("diff_host: mmap");
        return 2;
    }
    base = (uint64_t)p;
    R = base + PAGE;
    sim = mm_sim_new_host();
    char *maps = read_file("/proc/self/maps");
    char *stat = read_file("/proc/self/stat");
    if (!sim || !maps || !stat) {
        fprintf(stderr, "diff_host: cannot start the model or read /proc/self\n");
        return 2;
    }
    if (mm_sim_import_maps(sim, maps) != 0) {
        fprintf(stderr, "diff_host: import: %s\n", mm_sim_last_error(sim));
        return 2;
    }
    uint64_t start_brk = stat_field(stat, 47), start_stack = stat_field(stat, 28), s0, brk;
    mm_sim_brk_range(sim, &s0, &brk);
    mm_sim_set_brk(sim, start_brk, brk > start_brk ? brk : start_brk);
    mm_sim_set_start_stack(sim, start_stack);
    free(maps);
    free(stat);
    printf("region %#" PRIx64 "-%#" PRIx64 ", file %s\n", base, base + REGION_PAGES * PAGE, file);
    compare_maps("import");

    const int RW = PROT_READ | PROT_WRITE, ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    /* 3. The calls. Anonymous memory: map, split, punch holes. */
    do_mmap("mmap R, 4 pages, rw, fixed", R, 4 * PAGE, RW, ANON, -1, -1, 0);
    do_access("store to R", R, 1);
    do_access("load from R+3p (never touched)", R + 3 * PAGE, 0);
    do_mprotect("mprotect R+1p, 1 page, r", R + PAGE, PAGE, PROT_READ);
    do_mprotect("mprotect R+1p+1 (unaligned)", R + PAGE + 1, PAGE, PROT_READ);
    do_mmap("mmap R+1 (unaligned), fixed", R + 1, PAGE, RW, ANON, -1, -1, 0);
    do_mmap("mmap len 0", R, 0, RW, ANON, -1, -1, 0);
    do_access("store to R+1p (read-only)", R + PAGE, 1);
    do_munmap("munmap R+2p, 1 page", R + 2 * PAGE, PAGE);
    do_access("load from R+2p (hole)", R + 2 * PAGE, 0);
    do_mprotect("mprotect R+1p, 2 pages over a hole", R + PAGE, 2 * PAGE, RW);
    do_mprotect("mprotect R+2p (unmapped)", R + 2 * PAGE, PAGE, PROT_READ);
    do_munmap("munmap R+1 (unaligned)", R + 1, PAGE);
    do_munmap("munmap len 0", R, 0);
    do_madvise("madvise R, MADV_DONTNEED", R, PAGE, MADV_DONTNEED);
    do_madvise("madvise R+2p (hole), MADV_DONTNEED", R + 2 * PAGE, PAGE, MADV_DONTNEED);
    do_madvise("madvise R, advice 12345", R, PAGE, 12345);
    do_access("load from the guard page", base, 0);

    /* mremap: move and grow, shrink, grow in place, failures. */
    do_mremap("mremap R 1p -> R+10p 3p, fixed", R, PAGE, 3 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
              R + 10 * PAGE);
    do_mremap("mremap R+10p 3p -> 1p", R + 10 * PAGE, 3 * PAGE, PAGE, 0, 0);
    do_mremap("mremap R+10p 1p -> 2p in place", R + 10 * PAGE, PAGE, 2 * PAGE, 0, 0);
    do_mremap("mremap bad flags", R + 10 * PAGE, PAGE, PAGE, 0x80, 0);
    do_mremap("mremap R+2p (hole)", R + 2 * PAGE, PAGE, 2 * PAGE, 0, 0);
    do_mremap("mremap R+10p 2p -> 5p in place, no room", R + 10 * PAGE, 2 * PAGE, 5 * PAGE, 0, 0);
    do_access("store to R+11p (moved, grown)", R + 11 * PAGE, 1);

    /* Files: the same file opened on both sides (each its own fd). */
    int64_t mfd = -1, mfd_ro = -1;
    int fd = open(file, O_RDWR);
    int fe = fd < 0 ? errno : 0;
    compare("open rw", fe, 0, mm_sim_open(sim, file, O_RDWR, &mfd), 0);
    int fd_ro = open(file, O_RDONLY);
    fe = fd_ro < 0 ? errno : 0;
    compare("open ro", fe, 0, mm_sim_open(sim, file, O_RDONLY, &mfd_ro), 0);
    do_mmap("mmap file private r, off 1p, 3 pages", R + 20 * PAGE, 3 * PAGE, PROT_READ,
            MAP_PRIVATE | MAP_FIXED, fd, mfd, PAGE);
    do_access("load from the file mapping", R + 21 * PAGE, 0);
    do_access("load beyond the file's end", R + 22 * PAGE + 1, 0);
    do_mmap("mmap file shared rw, off 2p, 2 pages", R + 24 * PAGE, 2 * PAGE, RW,
            MAP_SHARED | MAP_FIXED, fd, mfd, 2 * PAGE);
    do_access("store to the shared mapping", R + 24 * PAGE, 1);
    do_access("store beyond the file's end", R + 25 * PAGE, 1);
    do_mmap("mmap file unaligned offset", R + 20 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED,
            fd, mfd, 100);
    do_mmap("mmap ro file shared rw", R + 27 * PAGE, PAGE, RW, MAP_SHARED | MAP_FIXED, fd_ro,
            mfd_ro, 0);
    do_mmap("mmap ro file shared r", R + 27 * PAGE, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd_ro,
            mfd_ro, 0);
    do_mprotect("mprotect ro shared mapping, rw", R + 27 * PAGE, PAGE, RW);
    do_mprotect("mprotect private file mapping, rw", R + 20 * PAGE, PAGE, RW);
    do_access("store to the private file mapping (COW)", R + 20 * PAGE, 1);
    fe = close(fd_ro) ? errno : 0;
    compare("close ro", fe, 0, mm_sim_close(sim, mfd_ro), 0);
    do_mmap("mmap a closed fd", R + 28 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd_ro,
            mfd_ro, 0);
    fe = close(fd) ? errno : 0;
    compare("close rw", fe, 0, mm_sim_close(sim, mfd), 0);
    do_access("load after close (mapping stays)", R + 24 * PAGE, 0);

    /* What both agree on by now. */
    char *maps_now = read_file("/proc/self/maps");
    char *region_now = maps_now ? region_lines(maps_now) : NULL;
    printf("the region in /proc/self/maps now:\n%s", region_now ? region_now : "?\n");
    free(region_now);
    free(maps_now);

    /* Back to one PROT_NONE reservation, as at the start. */
    do_mmap("mmap the whole area PROT_NONE, fixed", R, 32 * PAGE, PROT_NONE, ANON, -1, -1, 0);

    /* The model's lookups agree with the maps text. */
    MmSimVma v, w;
    int found = mm_sim_lookup(sim, R + 5 * PAGE, &v);
    int spec = mm_sim_lookup_speculative(sim, R + 5 * PAGE, &w);
    checks++;
    if (found != 1 || spec != 1 || v.start != base || v.end != base + REGION_PAGES * PAGE ||
        v.prot != PROT_NONE || v.inode != 0 || memcmp(&v, &w, sizeof v) != 0)
        fail("lookup: %d/%d %#" PRIx64 "-%#" PRIx64 " prot %u, expected the reservation", found,
             spec, v.start, v.end, v.prot);
    else
        printf("ok    %-44s = %#" PRIx64 "-%#" PRIx64 "\n", "lookup R+5p", v.start, v.end);

    munmap((void *)base, REGION_PAGES * PAGE);
    mm_sim_free(sim);
    unlink(file);
    if (failures) {
        printf("diff_host: %d of %d checks differ\n", failures, checks);
        return 1;
    }
    printf("diff_host: all %d checks match the kernel\n", checks);
    return 0;
}
