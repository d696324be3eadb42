/*
 * mm-host-helper: the host-kernel side of the mm-host test oracle.
 *
 * A tiny freestanding x86-64 Linux program (no libc, no heap, static buffers
 * only) that performs memory-management system calls on request, so that
 * the caller can compare the kernel's answers and /proc/self/maps with the
 * model.  It never calls brk or mmap on its own behalf: its address space
 * holds only what execve() built plus what the requests ask for.
 *
 * Protocol (all integers little-endian).  Requests arrive on stdin and
 * replies leave on stdout, but at start-up both pipes are duplicated to
 * PROTO_IN/PROTO_OUT (1022/1023, close-on-exec), which the helper uses from
 * then on: a request that closes or replaces fd 0 or 1 must not cut the
 * line.  Fds 0, 1 and 2 stay open, so the lowest free fd is 3 as usual.
 *
 *   request: struct request (64 bytes), then `slen` bytes of string
 *            (a path or memfd name; NUL-terminated here).
 *   reply:   struct reply (16 bytes), then `len` bytes of data.
 *
 * At start-up the helper sends one reply {HELLO_MAGIC, 0}.  Every request
 * gets exactly one reply, except OP_MAPS, which streams the file as replies
 * {1, n} + n bytes, closed by {0, 0} (or {-errno, 0}).  Syscall results are
 * passed through unchanged: negative values are -errno.  EOF on the request
 * pipe or OP_EXIT ends the process.
 *
 * Built with: gcc -static -nostdlib -ffreestanding -fno-pie -no-pie ...
 * (see build.rs).
 */

typedef unsigned long u64;
typedef long i64;
typedef unsigned char u8;

/* ---- x86-64 system call numbers ---------------------------------------- */

#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_mmap 9
#define SYS_mprotect 10
#define SYS_munmap 11
#define SYS_brk 12
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_rt_sigreturn 15
#define SYS_mremap 25
#define SYS_mincore 27
#define SYS_madvise 28
#define SYS_shmget 29
#define SYS_shmat 30
#define SYS_shmctl 31
#define SYS_dup 32
#define SYS_dup2 33
#define SYS_alarm 37
#define SYS_clone 56
#define SYS_fork 57
#define SYS_wait4 61
#define SYS_shmdt 67
#define SYS_ftruncate 77
#define SYS_mlock 149
#define SYS_munlock 150
#define SYS_mlockall 151
#define SYS_munlockall 152
#define SYS_chdir 80
#define SYS_exit_group 231
#define SYS_openat 257
#define SYS_dup3 292
#define SYS_pipe2 293
#define SYS_memfd_create 319
#define SYS_mlock2 325
#define SYS_close_range 436
#define SYS_memfd_secret 447
#define SYS_prlimit64 302
#define SYS_remap_file_pages 216

#define O_RDONLY 0
#define O_CLOEXEC 02000000
#define SIGBUS 7
#define SIGSEGV 11
#define SEGV_PKUERR 4
#define SIGXFSZ 25
#define SIGTRAP 5
#define SIGCHLD 17
#define SIGALRM 14
#define SIG_SETMASK 2
#define SA_SIGINFO 0x4
#define SA_RESTORER 0x04000000
#define TRAP_GP 13 /* #GP: e.g. a jump to a non-canonical address */
#define TRAP_PF 14 /* #PF */
#define PF_INSTR 0x10 /* X86_PF_INSTR: the fault was an instruction fetch */
#define CLONE_VM 0x100

#define STR(x) #x
#define XSTR(x) STR(x) /* a macro's value, for the assembly below */
/* Exit code of a fork child that lacks the target VMA (MADV_DONTFORK). */
#define EXIT_NOT_INHERITED 200

/* ---- protocol ----------------------------------------------------------- */

#define HELLO_MAGIC 0x74736f682d6d6dUL /* "mm-host" */

enum op {
	OP_MMAP = 1,
	OP_MUNMAP = 2,
	OP_MPROTECT = 3,
	OP_BRK = 4,
	OP_MREMAP = 5,
	OP_MADVISE = 6,
	OP_OPEN = 7,
	OP_OPENAT = 8,
	OP_CLOSE = 9,
	OP_DUP = 10,
	OP_DUP2 = 11,
	OP_DUP3 = 12,
	OP_MEMFD_CREATE = 13,
	OP_FTRUNCATE = 14,
	OP_FAULT = 15, /* a[0] = address, a[1] = ACCESS_* */
	OP_MAPS = 16,  /* streams /proc/self/maps */
	OP_STAT = 17,  /* value = brk(0), data = /proc/self/stat */
	OP_EXIT = 18,
	OP_CHDIR = 19, /* string = directory */
	OP_SMAPS = 20, /* streams /proc/self/smaps */
	OP_FORK = 21,  /* value = the child's pid; then ROUTE_CHILD reaches it */
	OP_MLOCK = 22,
	OP_MLOCK2 = 23,
	OP_MUNLOCK = 24,
	OP_MLOCKALL = 25,
	OP_MUNLOCKALL = 26,
	OP_MSEAL = 27, /* x86-64 system call 462 (Linux 6.10+) */
	OP_SHMGET = 28,
	OP_SHMAT = 29,
	OP_SHMDT = 30,
	OP_SHMCTL_RMID = 31, /* shmctl(a[0], IPC_RMID, NULL) */
	OP_MEMFD_SECRET = 32,
	OP_SETRLIMIT = 33, /* prlimit64(0, a[0], {a[1], a[2]}, NULL) */
	OP_REMAP_FILE_PAGES = 34,
	OP_PKEY_MPROTECT = 35,
	OP_PKEY_ALLOC = 36,
	OP_PKEY_FREE = 37,
};

/*
 * A request whose op has this bit goes to the fork child (OP_FORK) instead:
 * the helper passes it on, without the bit, over a pipe pair at
 * CHILD_IN/CHILD_OUT, and passes the child's replies back.  -ECHILD if there
 * is no child; -EPIPE if it went away.  The child is a helper like this one,
 * whose PROTO_IN/PROTO_OUT are the other ends of that pair.
 */
#define ROUTE_CHILD 0x1000
#define CHILD_IN 1020  /* requests to the child */
#define CHILD_OUT 1021 /* replies from the child */

enum access { ACCESS_READ = 0, ACCESS_WRITE = 1, ACCESS_EXEC = 2 };

struct request {
	u64 op;
	u64 a[6];
	u64 slen; /* length of the string that follows */
};

struct reply {
	i64 value;
	u64 len; /* length of the data that follows */
};

#define PROTO_IN 1022
#define PROTO_OUT 1023
#define STR_MAX 8192 /* longer than PATH_MAX, so the kernel judges length */
#define IO_BUF 4096

/* ---- static state (the helper has no heap) ------------------------------ */

static char strbuf[STR_MAX + 1];
static char iobuf[IO_BUF];
/* The fork child that ROUTE_CHILD requests go to (0: none). */
static i64 child_pid;
/* Signal recorded by the fault handler for the current READ/WRITE probe. */
static volatile int fault_sig;
/* si_code of that signal (SEGV_PKUERR: a protection key refused it). */
static volatile int fault_code;
/* EXEC probe: the target address, and the byte rax points at (children). */
static u64 exec_target;
static volatile u8 exec_scratch[64];
/* Set once the single-step trap has reached exec_target. */
static volatile int exec_at_target;
/* mincore() output, and the stack of the CLONE_VM child (see fault()). */
static u8 mincore_vec;
static u8 vm_child_stack[8192] __attribute__((aligned(16)));

/* ---- raw system calls --------------------------------------------------- */

static inline i64 sys6(i64 n, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	register u64 r10 __asm__("r10") = d;
	register u64 r8 __asm__("r8") = e;
	register u64 r9 __asm__("r9") = f;
	i64 ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define sys0(n) sys6((n), 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6((n), (u64)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6((n), (u64)(a), (u64)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6((n), (u64)(a), (u64)(b), (u64)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) \
	sys6((n), (u64)(a), (u64)(b), (u64)(c), (u64)(d), 0, 0)

static __attribute__((noreturn)) void exit_group(int code)
{
	for (;;)
		sys1(SYS_exit_group, code);
}

/* gcc may emit calls to these even when freestanding. */
void *memset(void *d, int c, u64 n)
{
	volatile u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, u64 n)
{
	volatile u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static u64 cstrlen(const char *s)
{
	u64 n = 0;
	while (s[n])
		n++;
	return n;
}

static void die(const char *msg)
{
	sys3(SYS_write, 2, msg, cstrlen(msg));
	exit_group(100);
}

/* ---- entry point, probes and signal restorer (fixed instructions) ------- */

/*
 * _start: the kernel enters with rsp at argc; we need nothing from it.
 * probe_read:  one byte load from rdi:  8a 07    movb (%rdi),%al
 * probe_write: one byte store to rdi:   c6 07 c3 movb $0xc3,(%rdi)
 * probe_exec:  rax = rsi, set the trap flag, then  ff d7  call *%rdi
 *              (single-stepping: the child runs one instruction at the
 *              target at most, see on_exec_fault)
 * The *_end labels mark the instruction that follows each faulting one, so
 * the handler can skip it by its length.
 * clone_vm(stack_top): clone(CLONE_VM | SIGCHLD) onto that stack; the child
 * runs vm_child(), the parent gets the pid (or -errno).
 */
__asm__(".text\n"
	".globl _start\n"
	".type _start,@function\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	and $-16, %rsp\n"
	"	call helper_main\n"
	"	hlt\n"
	"\n"
	".globl probe_read, probe_read_end\n"
	".type probe_read,@function\n"
	"probe_read:\n"
	"	movb (%rdi), %al\n"
	"probe_read_end:\n"
	"	ret\n"
	"\n"
	".globl probe_write, probe_write_end\n"
	".type probe_write,@function\n"
	"probe_write:\n"
	"	movb $0xc3, (%rdi)\n"
	"probe_write_end:\n"
	"	ret\n"
	"\n"
	".globl probe_exec, probe_exec_call\n"
	".type probe_exec,@function\n"
	"probe_exec:\n"
	"	mov %rsi, %rax\n"
	"	pushfq\n"
	"	orq $0x100, (%rsp)\n"
	"	popfq\n"
	"probe_exec_call:\n"
	"	call *%rdi\n"
	"	ret\n"
	"\n"
	".globl clone_vm\n"
	".type clone_vm,@function\n"
	"clone_vm:\n"
	"	mov %rdi, %rsi\n" /* newsp */
	"	mov $(" XSTR(CLONE_VM) "|" XSTR(SIGCHLD) "), %edi\n"
	"	xor %edx, %edx\n"
	"	xor %r10d, %r10d\n"
	"	xor %r8d, %r8d\n"
	"	mov $" XSTR(SYS_clone) ", %eax\n"
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jnz 1f\n"
	"	xor %ebp, %ebp\n"
	"	call vm_child\n"
	"	hlt\n"
	"1:	ret\n"
	"\n"
	".globl restore_rt\n"
	".type restore_rt,@function\n"
	"restore_rt:\n"
	"	mov $" XSTR(SYS_rt_sigreturn) ", %eax\n"
	"	syscall\n"
	"	hlt\n");

void probe_read(u64 addr);
void probe_write(u64 addr);
void probe_exec(u64 addr, volatile u8 *scratch);
void restore_rt(void);
i64 clone_vm(void *stack_top);
extern const char probe_read_end[], probe_write_end[], probe_exec_call[];

/* Encoded lengths of the faulting instructions (checked at start-up). */
#define PROBE_READ_LEN 2
#define PROBE_WRITE_LEN 3

/* ---- signal handling ----------------------------------------------------- */

/* The kernel's struct sigaction (x86-64). */
struct ksigaction {
	void *handler;
	u64 flags;
	void *restorer;
	u64 mask;
};

/* siginfo_t: si_addr is at offset 16 for SIGSEGV/SIGBUS. */
struct ksiginfo {
	int signo, errno_, code, pad_;
	u64 addr;
};

/* ucontext_t: uc_flags, uc_link, stack_t (24 bytes), then sigcontext. */
#define UC_GREGS 40
#define GREG_RIP 16
#define GREG_ERR 19
#define GREG_TRAPNO 20

static u64 *greg(void *uc, int i)
{
	return (u64 *)((char *)uc + UC_GREGS) + i;
}

/* READ/WRITE probes: record the signal and step over the access. */
static void on_fault(int sig, struct ksiginfo *si, void *uc)
{
	u64 *rip = greg(uc, GREG_RIP);
	fault_code = si->code;
	if (*rip == (u64)probe_read)
		*rip += PROBE_READ_LEN;
	else if (*rip == (u64)probe_write)
		*rip += PROBE_WRITE_LEN;
	else
		die("mm-host-helper: unexpected fault outside a probe\n");
	fault_sig = sig;
}

static int canonical(u64 addr)
{
	u64 top = addr >> 47;
	return top == 0 || top == 0x1ffff;
}

/*
 * EXEC probe, in the child: the fetch at exec_target failed if the fault is
 * on that very instruction (si_addr == rip == target; or #GP there or on
 * the call, which is how a non-canonical target fails); anything else means
 * the fetch succeeded and the code merely went astray.
 */
static void on_exec_fault(int sig, struct ksiginfo *si, void *uc)
{
	u64 rip = *greg(uc, GREG_RIP);
	/*
	 * Single-step traps (the trap flag is set before the call): the first
	 * one arrives with rip at the target, before its fetch; returning keeps
	 * the flag and lets the fetch happen.  Any later one means the fetch
	 * succeeded: stop there, before wild code can touch the address space
	 * (a CLONE_VM child shares the helper's).
	 */
	if (sig == SIGTRAP) {
		if (rip == exec_target && !exec_at_target) {
			exec_at_target = 1;
			return;
		}
		exit_group(0);
	}
	u64 trapno = *greg(uc, GREG_TRAPNO);
	int gp = trapno == TRAP_GP && !canonical(exec_target);
	/*
	 * A page fault at the target is the fetch's only if its error code
	 * says so: the instruction there may itself access the target as
	 * data (rdi holds it: vDSO bytes "c0 0f 85" are rorb $0x85,(%rdi)),
	 * which faults on read-only code with the same rip and address.
	 */
	int fetch = trapno != TRAP_PF || (*greg(uc, GREG_ERR) & PF_INSTR);
	int failed = (rip == (u64)probe_exec_call && gp) ||
		     (rip == exec_target && ((si->addr == exec_target && fetch) || gp));
	exit_group(failed ? sig : 0);
}

/* Inherited state that would break the probes: a blocked SIGSEGV is fatal,
 * an ignored SIGCHLD auto-reaps the EXEC child, an ignored SIGALRM would let
 * a looping EXEC child hang. SIGXFSZ is ignored: an ftruncate past
 * RLIMIT_FSIZE then reports EFBIG instead of killing the helper. */
static void reset_signals(void)
{
	struct ksigaction dfl = { 0, 0, 0, 0 };
	struct ksigaction ign = { (void *)1, 0, 0, 0 };
	u64 empty = 0;
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, &empty, 0, 8);
	sys4(SYS_rt_sigaction, SIGCHLD, &dfl, 0, 8);
	sys4(SYS_rt_sigaction, SIGALRM, &dfl, 0, 8);
	sys4(SYS_rt_sigaction, SIGXFSZ, &ign, 0, 8);
}

static void install(void (*handler)(int, struct ksiginfo *, void *))
{
	struct ksigaction sa = {
		.handler = (void *)handler,
		.flags = SA_SIGINFO | SA_RESTORER,
		.restorer = (void *)restore_rt,
		.mask = 0,
	};
	if (sys4(SYS_rt_sigaction, SIGSEGV, &sa, 0, 8) < 0 ||
	    sys4(SYS_rt_sigaction, SIGBUS, &sa, 0, 8) < 0)
		die("mm-host-helper: rt_sigaction failed\n");
}

/* ---- faults -------------------------------------------------------------- */

/* Whether a VMA covers addr (mincore has no side effects). */
static int is_mapped(u64 addr)
{
	return sys3(SYS_mincore, addr & ~4095UL, 1, &mincore_vec) == 0;
}

/* Body of an EXEC child: fetch at exec_target, exit with the verdict. */
static __attribute__((noreturn)) void exec_child(void)
{
	/* Keep wild code away from the parent's files. */
	sys3(SYS_close_range, 0, ~0U, 0);
	install(on_exec_fault);
	struct ksigaction trap = {
		.handler = (void *)on_exec_fault,
		.flags = SA_SIGINFO | SA_RESTORER,
		.restorer = (void *)restore_rt,
		.mask = 0,
	};
	if (sys4(SYS_rt_sigaction, SIGTRAP, &trap, 0, 8) < 0)
		exit_group(101);
	sys1(SYS_alarm, 1); /* against code that loops */
	probe_exec(exec_target, exec_scratch);
	exit_group(0); /* e.g. a 0xC3 (ret) at the target */
}

void __attribute__((noreturn, used)) vm_child(void)
{
	exec_child();
}

/* Waits for an EXEC child; returns its verdict, or -errno. */
static i64 reap(i64 pid)
{
	int status = 0;
	i64 r;
	do
		r = sys4(SYS_wait4, pid, &status, 0, 0);
	while (r == -4); /* EINTR */
	if (r < 0)
		return r;
	if ((status & 0x7f) == 0) /* exited: the code chosen by the child */
		return (status >> 8) & 0xff;
	return 0; /* killed (SIGALRM, SIGILL, ...): the fetch succeeded */
}

/*
 * Returns 0, SIGSEGV or SIGBUS (or -errno if the EXEC child could not run).
 *
 * EXEC first reads addr here (see below), then fetches in a fork child, so
 * that whatever the code at addr does stays there.  A MADV_DONTFORK VMA is missing from that child (mincore tells);
 * then a CLONE_VM child, which shares the helper's address space, probes
 * it instead, on a stack of its own.
 */
static i64 fault(u64 addr, u64 access)
{
	if (access == ACCESS_READ || access == ACCESS_WRITE) {
		fault_sig = 0;
		if (access == ACCESS_READ)
			probe_read(addr);
		else
			probe_write(addr);
		return fault_sig;
	}
	if (access != ACCESS_EXEC)
		return -22; /* EINVAL */

	/*
	 * An instruction fetch from a page that is not present first faults
	 * like a read (x86 access_error() treats both alike), with the same
	 * side effects: a grows-down VMA grows, a file page is read in.  Do that
	 * here in the helper, so that those effects are not lost in the fork
	 * child; a failure is already the answer.
	 */
	fault_sig = 0;
	probe_read(addr);
	/*
	 * A protection key refuses data reads, never fetches: an execute-only
	 * key (mmap or mprotect with PROT_EXEC alone) fails the read with
	 * SEGV_PKUERR, before the fault does anything.  The fetch is still to
	 * be tried, and its fault's side effects (an anon_vma for a huge zero
	 * page, seed 210012 with THP "always") belong to this address space:
	 * a CLONE_VM child, which shares it, fetches.
	 */
	int keyed = fault_sig == SIGSEGV && fault_code == SEGV_PKUERR;
	if (fault_sig && !keyed)
		return fault_sig;

	exec_target = addr;
	exec_at_target = 0;
	i64 pid;
	if (keyed) {
		pid = clone_vm(vm_child_stack + sizeof vm_child_stack);
		return pid < 0 ? pid : reap(pid);
	}
	int mapped = is_mapped(addr);
	pid = sys0(SYS_fork);
	if (pid < 0)
		return pid;
	if (pid == 0) {
		if (mapped && !is_mapped(addr))
			exit_group(EXIT_NOT_INHERITED);
		exec_child();
	}
	i64 verdict = reap(pid);
	if (verdict != EXIT_NOT_INHERITED)
		return verdict;
	pid = clone_vm(vm_child_stack + sizeof vm_child_stack);
	if (pid < 0)
		return pid;
	return reap(pid);
}

/* ---- I/O ------------------------------------------------------------------ */

/* Reads n bytes from fd; 0, or -1 at EOF or on an error. */
static int read_from(int fd, void *buf, u64 n)
{
	char *p = buf;
	while (n) {
		i64 r = sys3(SYS_read, fd, p, n);
		if (r == -4)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (u64)r;
	}
	return 0;
}

static void read_full(void *buf, u64 n)
{
	if (read_from(PROTO_IN, buf, n))
		exit_group(0); /* the parent went away */
}

/* Writes n bytes to fd; 0, or -1 on an error. */
static int write_to(int fd, const void *buf, u64 n)
{
	const char *p = buf;
	while (n) {
		i64 r = sys3(SYS_write, fd, p, n);
		if (r == -4)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (u64)r;
	}
	return 0;
}

static void write_full(const void *buf, u64 n)
{
	if (write_to(PROTO_OUT, buf, n))
		exit_group(101);
}

static void send(i64 value, const void *data, u64 len)
{
	struct reply rep = { value, len };
	write_full(&rep, sizeof rep);
	if (len)
		write_full(data, len);
}

/* OP_MAPS, OP_SMAPS: stream a /proc file in chunks, then {0,0} or {-errno,0}. */
static void stream_file(const char *path)
{
	i64 fd = sys3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		send(fd, 0, 0);
		return;
	}
	i64 r;
	while ((r = sys3(SYS_read, fd, iobuf, IO_BUF)) > 0)
		send(1, iobuf, (u64)r);
	sys1(SYS_close, fd);
	send(r < 0 ? r : 0, 0, 0);
}

/* OP_STAT: value = brk(0), data = the whole /proc/self/stat line. */
static void send_stat(void)
{
	i64 fd = sys3(SYS_open, "/proc/self/stat", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		send(fd, 0, 0);
		return;
	}
	u64 n = 0;
	i64 r;
	while (n < IO_BUF && (r = sys3(SYS_read, fd, iobuf + n, IO_BUF - n)) > 0)
		n += (u64)r;
	sys1(SYS_close, fd);
	send(sys1(SYS_brk, 0), iobuf, n);
}

/* ---- fork child ----------------------------------------------------------- */

/*
 * OP_FORK: forks a child that serves ROUTE_CHILD requests.  Returns the pid
 * in the parent (once the child has greeted), 0 in the child (which has
 * sent its greeting on its own line), or -errno.  The pipes live at fds
 * 1020-1023, so the descriptor tables below them are the same in both.
 */
static i64 do_fork(void)
{
	int req[2], rep[2];
	if (child_pid)
		return -16; /* EBUSY */
	i64 r = sys2(SYS_pipe2, req, O_CLOEXEC);
	if (r < 0)
		return r;
	r = sys2(SYS_pipe2, rep, O_CLOEXEC);
	if (r < 0)
		goto close_req;
	r = sys0(SYS_fork);
	if (r == 0) {
		if (sys3(SYS_dup3, req[0], PROTO_IN, O_CLOEXEC) != PROTO_IN ||
		    sys3(SYS_dup3, rep[1], PROTO_OUT, O_CLOEXEC) != PROTO_OUT)
			exit_group(102);
	} else if (r > 0) {
		struct reply hello;
		if (sys3(SYS_dup3, req[1], CHILD_IN, O_CLOEXEC) != CHILD_IN ||
		    sys3(SYS_dup3, rep[0], CHILD_OUT, O_CLOEXEC) != CHILD_OUT ||
		    read_from(CHILD_OUT, &hello, sizeof hello))
			die("mm-host-helper: no line to the fork child\n");
		child_pid = r;
	}
	sys1(SYS_close, rep[0]);
	sys1(SYS_close, rep[1]);
close_req:
	sys1(SYS_close, req[0]);
	sys1(SYS_close, req[1]);
	if (r == 0) {
		child_pid = 0;
		send(HELLO_MAGIC, 0, 0);
	}
	return r;
}

/* Passes one request (already read, string in strbuf) to the child and its
 * replies back: several for a streamed file, closed by a value other than 1. */
static void route(struct request *rq)
{
	if (!child_pid) {
		send(-10, 0, 0); /* ECHILD */
		return;
	}
	u64 op = rq->op & ~(u64)ROUTE_CHILD;
	rq->op = op;
	if (write_to(CHILD_IN, rq, sizeof *rq) || write_to(CHILD_IN, strbuf, rq->slen))
		goto gone;
	for (;;) {
		struct reply rep;
		if (read_from(CHILD_OUT, &rep, sizeof rep) || rep.len > IO_BUF ||
		    read_from(CHILD_OUT, iobuf, rep.len))
			goto gone;
		send(rep.value, iobuf, rep.len);
		if ((op != OP_MAPS && op != OP_SMAPS) || rep.value != 1)
			break;
	}
	if (op == OP_EXIT)
		goto reap;
	return;
gone:
	send(-32, 0, 0); /* EPIPE */
reap:
	sys1(SYS_close, CHILD_IN);
	sys1(SYS_close, CHILD_OUT);
	reap(child_pid);
	child_pid = 0;
}

/* ---- main loop ------------------------------------------------------------ */

void __attribute__((noreturn, used)) helper_main(void)
{
	if (probe_read_end - (const char *)probe_read != PROBE_READ_LEN ||
	    probe_write_end - (const char *)probe_write != PROBE_WRITE_LEN)
		die("mm-host-helper: probe instruction lengths are off\n");
	if (sys3(SYS_dup3, 0, PROTO_IN, O_CLOEXEC) != PROTO_IN ||
	    sys3(SYS_dup3, 1, PROTO_OUT, O_CLOEXEC) != PROTO_OUT)
		die("mm-host-helper: cannot move the protocol pipes\n");
	reset_signals();
	install(on_fault);
	send(HELLO_MAGIC, 0, 0);

	for (;;) {
		struct request rq;
		read_full(&rq, sizeof rq);
		if (rq.slen > STR_MAX)
			die("mm-host-helper: string too long\n");
		read_full(strbuf, rq.slen);
		strbuf[rq.slen] = 0;

		u64 *a = rq.a;
		if (rq.op & ROUTE_CHILD) {
			route(&rq);
			continue;
		}
		switch (rq.op) {
		case OP_MMAP:
			send(sys6(SYS_mmap, a[0], a[1], a[2], a[3], a[4], a[5]),
			     0, 0);
			break;
		case OP_MUNMAP:
			send(sys2(SYS_munmap, a[0], a[1]), 0, 0);
			break;
		case OP_MPROTECT:
			send(sys3(SYS_mprotect, a[0], a[1], a[2]), 0, 0);
			break;
		case OP_BRK:
			send(sys1(SYS_brk, a[0]), 0, 0);
			break;
		case OP_MREMAP:
			send(sys6(SYS_mremap, a[0], a[1], a[2], a[3], a[4], 0),
			     0, 0);
			break;
		case OP_MADVISE:
			send(sys3(SYS_madvise, a[0], a[1], a[2]), 0, 0);
			break;
		case OP_OPEN:
			send(sys3(SYS_open, strbuf, a[0], a[1]), 0, 0);
			break;
		case OP_OPENAT:
			send(sys4(SYS_openat, a[0], strbuf, a[1], a[2]), 0, 0);
			break;
		case OP_CLOSE:
			send(sys1(SYS_close, a[0]), 0, 0);
			break;
		case OP_DUP:
			send(sys1(SYS_dup, a[0]), 0, 0);
			break;
		case OP_DUP2:
			send(sys2(SYS_dup2, a[0], a[1]), 0, 0);
			break;
		case OP_DUP3:
			send(sys3(SYS_dup3, a[0], a[1], a[2]), 0, 0);
			break;
		case OP_MEMFD_CREATE:
			send(sys2(SYS_memfd_create, strbuf, a[0]), 0, 0);
			break;
		case OP_FTRUNCATE:
			send(sys2(SYS_ftruncate, a[0], a[1]), 0, 0);
			break;
		case OP_MLOCK:
			send(sys2(SYS_mlock, a[0], a[1]), 0, 0);
			break;
		case OP_MLOCK2:
			send(sys3(SYS_mlock2, a[0], a[1], a[2]), 0, 0);
			break;
		case OP_MUNLOCK:
			send(sys2(SYS_munlock, a[0], a[1]), 0, 0);
			break;
		case OP_MLOCKALL:
			send(sys1(SYS_mlockall, a[0]), 0, 0);
			break;
		case OP_MUNLOCKALL:
			send(sys1(SYS_munlockall, 0), 0, 0);
			break;
		case OP_MSEAL:
			send(sys3(462, a[0], a[1], a[2]), 0, 0);
			break;
		case OP_SHMGET:
			send(sys3(SYS_shmget, a[0], a[1], a[2]), 0, 0);
			break;
		case OP_SHMAT:
			send(sys3(SYS_shmat, a[0], a[1], a[2]), 0, 0);
			break;
		case OP_SHMDT:
			send(sys1(SYS_shmdt, a[0]), 0, 0);
			break;
		case OP_SHMCTL_RMID:
			send(sys3(SYS_shmctl, a[0], 0, 0), 0, 0);
			break;
		case OP_MEMFD_SECRET:
			send(sys1(SYS_memfd_secret, a[0]), 0, 0);
			break;
		case OP_REMAP_FILE_PAGES:
			send(sys6(SYS_remap_file_pages, a[0], a[1], a[2], a[3], a[4], 0),
			     0, 0);
			break;
		case OP_PKEY_MPROTECT:
			send(sys4(329 /* pkey_mprotect */, a[0], a[1], a[2], a[3]), 0, 0);
			break;
		case OP_PKEY_ALLOC:
			send(sys3(330 /* pkey_alloc */, a[0], a[1], 0), 0, 0);
			break;
		case OP_PKEY_FREE:
			send(sys1(331 /* pkey_free */, a[0]), 0, 0);
			break;
		case OP_SETRLIMIT: {
			u64 lim[2] = { a[1], a[2] };
			send(sys4(SYS_prlimit64, 0, a[0], lim, 0), 0, 0);
			break;
		}
		case OP_FAULT:
			send(fault(a[0], a[1]), 0, 0);
			break;
		case OP_MAPS:
			stream_file("/proc/self/maps");
			break;
		case OP_SMAPS:
			stream_file("/proc/self/smaps");
			break;
		case OP_STAT:
			send_stat();
			break;
		case OP_CHDIR:
			send(sys1(SYS_chdir, strbuf), 0, 0);
			break;
		case OP_FORK: {
			i64 r = do_fork();
			if (r != 0) /* the child has greeted instead */
				send(r, 0, 0);
			break;
		}
		case OP_EXIT:
			send(0, 0, 0);
			exit_group(0);
		default:
			send(-38, 0, 0); /* ENOSYS */
			break;
		}
	}
}
