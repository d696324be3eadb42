/* A process tree for the record/replay tests (tests/process_trees.rs):
 * threads that map and unmap while the main thread forks; fork children
 * that grow the break, mremap, mprotect and map over what the parent
 * marked MADV_DONTFORK and MADV_WIPEONFORK; a child killed by SIGKILL;
 * posix_spawn (clone with CLONE_VM|CLONE_VFORK); vfork and exec of a
 * program whose second thread execs again; an mlock'd page, unlocked in
 * the children (fork clears VM_LOCKED); a clone(CLONE_VM) child whose
 * mmap, mprotect and munmap the parent sees. With the argument `serial`,
 * no worker threads: strace prints calls in the order they complete, which
 * is not the kernel's when threads race (mmsim record serializes them). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <spawn.h>
#include <sched.h>
extern char **environ;
static char *vm_child_map;
/* A clone(CLONE_VM) child: its calls change the parent's address space. */
static int vm_child(void *arg) {
    char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    p[4096] = 1;
    mprotect(p + 4096, 4096, PROT_READ);
    munmap(p, 4096);
    vm_child_map = p;
    return arg != NULL;
}
static void *worker(void *arg) {
    for (int i = 0; i < 200; i++) {
        char *p = mmap(NULL, 4096 * (1 + i % 7), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;
        if (i % 3) munmap(p, 4096);
    }
    return arg;
}
static void *execer(void *arg) {
    char *argv[] = {"/bin/true", NULL};
    execve("/bin/true", argv, environ);
    return arg;
}
int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "thread-exec")) {
        pthread_t t; pthread_create(&t, NULL, execer, NULL); pthread_join(t, NULL); return 1;
    }
    char *a = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(a, 1, 16 * 4096);
    madvise(a, 4 * 4096, MADV_DONTFORK);
    madvise(a + 8 * 4096, 4 * 4096, MADV_WIPEONFORK);
    mlock(a + 12 * 4096, 4096);
    char *s = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    s[0] = 1;
    void *b0 = sbrk(0); sbrk(64 * 1024); memset(b0, 2, 64 * 1024);
    int threads = argc > 1 && !strcmp(argv[1], "serial") ? 0 : 3;
    pthread_t th[3];
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int k = 0; k < 4; k++) {
        pid_t c = fork();
        if (c == 0) {
            sbrk(128 * 1024 * (k + 1));
            char *n = mmap(a + 16 * 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (n != MAP_FAILED) n[0] = 3;
            char *m = mremap(a + 4 * 4096, 4 * 4096, 64 * 4096, MREMAP_MAYMOVE);
            if (m != MAP_FAILED) m[63 * 4096] = 1;
            mprotect(a + 8 * 4096, 4096, PROT_READ);
            if (k == 3) raise(SIGKILL);
            _exit(0);
        }
    }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    while (wait(NULL) > 0) {}
    char *stack = malloc(64 * 1024);
    pid_t vc = clone(vm_child, stack + 64 * 1024, CLONE_VM | SIGCHLD, NULL);
    if (vc > 0) waitpid(vc, NULL, 0);
    free(stack);
    if (vm_child_map) {
        /* The child's munmap freed the first page; the second is mapped. */
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
        char *q = mmap(vm_child_map, 4096, PROT_READ, flags, -1, 0);
        char *r = mmap(vm_child_map + 4096, 4096, PROT_READ, flags, -1, 0);
        if (q != vm_child_map || r != MAP_FAILED) printf("clone_vm: unexpected\n");
    }
    pid_t pid;
    char *sargv[] = {"ls", "-d", "/", NULL};
    posix_spawn(&pid, "/bin/ls", NULL, NULL, sargv, environ);
    waitpid(pid, NULL, 0);
    if (vfork() == 0) { char *e[] = {"./tree", "thread-exec", NULL}; execve("./tree", e, environ); _exit(127); }
    wait(NULL);
    char *n2 = mmap(a + 16 * 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (n2 != MAP_FAILED) n2[0] = 3;
    printf("done\n");
    return 0;
}
