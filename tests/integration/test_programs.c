/* SPDX-License-Identifier: MIT */
/*
 * Real programs nobody here wrote, under `uswap run` with a budget about a
 * quarter of their data, each checked against an independent result:
 *   - redis-server (Debian's, jemalloc inside): DEBUG POPULATE about 4x the
 *     budget, the digest equal to a plain redis-server's with the same
 *     data, again after heavy swapping by redis-benchmark, a BGSAVE (from a
 *     forked child) loaded into a plain redis-server with the same digest,
 *     and VmRSS near the budget plus the store meanwhile;
 *   - python3 building and checking a large structure, with forked
 *     children computing on it, against the same script run without uswap;
 *   - GNU sort of a file nearly 3x the budget, against sort without uswap
 *     (sorting touches its buffer at random: more would take many minutes).
 *
 * uswap-test-labels: long
 */
#include <sys/stat.h>

#include "shimtest.h"
#include "testlib.h"

#define LIMIT (16ul << 20)
#define LIMIT_ARG "16M"

static char dir[] = "/tmp/uswap-programs-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

/* redis-servers started and not stopped yet: killed when a check fails */
static pid_t servers[4];

static void servers_kill(void)
{
	unsigned i;

	for (i = 0; i < 4; i++)
		if (servers[i] > 0) {
			kill(servers[i], SIGKILL);
			waitpid(servers[i], NULL, 0);
			servers[i] = 0;
		}
}

static void servers_track(pid_t pid, bool running)
{
	unsigned i;

	for (i = 0; i < 4; i++)
		if (running ? servers[i] == 0 : servers[i] == pid) {
			servers[i] = running ? pid : 0;
			return;
		}
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	servers_kill();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) < 0 ? -1 : 0;
}

/* Run a shell command; its stdout (trimmed) into out.  @return status. */
static int sh(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (!p)
		return -1;
	if (out) {
		n = fread(out, 1, cap - 1, p);
		while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
			n--;
		out[n] = 0;
	} else {
		char sink[4096];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A program the tests need must be installed: say so loudly (fail). */
static void need(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", prog);
	if (sh(cmd, NULL, 0) != 0)
		fprintf(stderr, "%s is not installed: .ci/run installs it (apt-get)\n", prog);
	assert_int_equal(sh(cmd, NULL, 0), 0);
}

/* ---------------- redis ---------------- */

static int port_base;

static pid_t redis_start(int port, bool managed, const char *dbfile)
{
	char sport[16], log[256];
	char *plain[] = { "redis-server", "--port", sport, "--save", "", "--appendonly", "no",
			  "--dir", dir, "--dbfilename", (char *)dbfile, "--enable-debug-command",
			  "yes", NULL };
	char *argv[32];
	char ping[128], out[64];
	pid_t pid;
	int i, n = 0;

	snprintf(sport, sizeof(sport), "%d", port);
	snprintf(log, sizeof(log), "%s/redis-%d.log", dir, port);
	if (managed) {
		argv[n++] = USWAP_BIN;
		argv[n++] = "run";
		argv[n++] = "--limit";
		argv[n++] = LIMIT_ARG;
		argv[n++] = "--";
	}
	for (i = 0; plain[i]; i++)
		argv[n++] = plain[i];
	argv[n] = NULL;
	pid = st_spawn(argv, log);
	servers_track(pid, true);
	snprintf(ping, sizeof(ping), "redis-cli -p %d ping 2>/dev/null", port);
	for (i = 0; i < 500; i++) {
		if (sh(ping, out, sizeof(out)) == 0 && !strcmp(out, "PONG"))
			return pid;
		usleep(20000);
	}
	fprintf(stderr, "redis-server on port %d did not start (log: %s)\n", port, log);
	kill(pid, SIGKILL);
	return -1;
}

static void redis_stop(int port, pid_t pid)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "redis-cli -p %d shutdown nosave >/dev/null 2>&1", port);
	sh(cmd, NULL, 0);
	servers_track(pid, false);
	assert_true(st_wait(pid, 60) >= 0);
}

static void redis_cmd(int port, const char *args, char *out, size_t cap)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "redis-cli -p %d %s", port, args);
	assert_int_equal(sh(cmd, out, cap), 0);
}

static uint64_t redis_info(int port, const char *field)
{
	char cmd[256], out[64];

	snprintf(cmd, sizeof(cmd), "redis-cli -p %d info | grep '^%s:' | cut -d: -f2", port, field);
	assert_int_equal(sh(cmd, out, sizeof(out)), 0);
	return strtoull(out, NULL, 10);
}

static void check_rss(pid_t pid, const char *when, uint64_t data)
{
	uint64_t rss = st_vmrss(pid), pool = 0;

	assert_true(st_counter(pid, "pool_bytes", &pool));
	fprintf(stderr, "%s: data %llu MiB, VmRSS %llu MiB, budget %lu MiB, store %llu MiB\n", when,
		(unsigned long long)(data >> 20), (unsigned long long)(rss >> 20), LIMIT >> 20,
		(unsigned long long)(pool >> 20));
	/* redis's own unmanaged start (binary, libraries, jemalloc's first
	 * extents, made before uswap starts) is about 12 MiB */
	assert_true(rss <= LIMIT + pool + (20ul << 20));
}

static void test_redis(void **state)
{
	int plain_port = port_base, managed_port = port_base + 1, load_port = port_base + 2;
	char want[128], got[128], again[128], after[128], loaded[128], out[256];
	char bench[256], values_plain[4096], values_managed[4096], snap[256];
	pid_t plain, managed, loader;
	uint64_t used, v;
	int i;

	(void)state;
	need("redis-server");
	need("redis-cli");
	need("redis-benchmark");

	/* the independent result: a plain redis-server with the same data */
	plain = redis_start(plain_port, false, "plain.rdb");
	assert_true(plain > 0);
	redis_cmd(plain_port, "debug populate 250000 key 200", out, sizeof(out));
	redis_cmd(plain_port, "debug digest", want, sizeof(want));
	redis_cmd(plain_port, "debug digest-value key:0 key:4711 key:99999 key:249999",
		  values_plain, sizeof(values_plain));
	redis_stop(plain_port, plain);

	managed = redis_start(managed_port, true, "managed.rdb");
	assert_true(managed > 0);
	redis_cmd(managed_port, "debug populate 250000 key 200", out, sizeof(out));
	used = redis_info(managed_port, "used_memory");
	assert_true(used >= 4 * LIMIT);
	redis_cmd(managed_port, "debug digest", got, sizeof(got));
	assert_string_equal(got, want);
	assert_true(st_counter(managed, "swapout_pages", &v) && v > 0);
	check_rss(managed, "redis after DEBUG POPULATE", used);

	/* heavy swapping: random writes of new keys and reads */
	snprintf(bench, sizeof(bench),
		 "redis-benchmark -p %d -q -n 40000 -r 200000 -d 200 -t set,get >/dev/null",
		 managed_port);
	assert_int_equal(sh(bench, NULL, 0), 0);
	used = redis_info(managed_port, "used_memory");
	check_rss(managed, "redis after redis-benchmark", used);
	redis_cmd(managed_port, "debug digest-value key:0 key:4711 key:99999 key:249999",
		  values_managed, sizeof(values_managed));
	assert_string_equal(values_managed, values_plain);
	redis_cmd(managed_port, "debug digest", after, sizeof(after));
	redis_cmd(managed_port, "debug digest", again, sizeof(again));
	assert_string_equal(again, after);

	/* BGSAVE: a forked child reads everything, swapped out or not */
	redis_cmd(managed_port, "bgsave", out, sizeof(out));
	for (i = 0; i < 3000 && redis_info(managed_port, "rdb_bgsave_in_progress"); i++)
		usleep(20000);
	redis_cmd(managed_port, "info persistence | grep rdb_last_bgsave_status", out,
		  sizeof(out));
	assert_non_null(strstr(out, "ok"));
	assert_true(st_counter(managed, "fork_events", &v) && v >= 1);
	redis_stop(managed_port, managed);

	/* the snapshot in a plain redis-server: the same data */
	snprintf(snap, sizeof(snap), "cp %s/managed.rdb %s/loaded.rdb", dir, dir);
	assert_int_equal(sh(snap, NULL, 0), 0);
	loader = redis_start(load_port, false, "loaded.rdb");
	assert_true(loader > 0);
	redis_cmd(load_port, "debug digest", loaded, sizeof(loaded));
	assert_string_equal(loaded, after);
	redis_stop(load_port, loader);
}

/* ---------------- python ---------------- */

static const char *python_script =
	"import os, socket, hashlib\n"
	"N = 200000\n"
	"d = {('k%d' % i): (i, i * i, str(i) * 3, [i % 7] * 4) for i in range(N)}\n"
	"big = [x * 3 for x in range(1000000)]\n"
	"for i in range(0, N, 3):\n"
	"    d['k%d' % i] = (i, -i, 'w', [])\n"
	"ok = all(d['k%d' % i] == ((i, -i, 'w', []) if i % 3 == 0 else (i, i * i, str(i) * 3, [i % 7] * 4)) for i in range(N))\n"
	"ok = ok and sum(big) == 3 * 1000000 * 999999 // 2\n"
	"kids = []\n"
	"for c in range(2):\n"
	"    pid = os.fork()\n"
	"    if pid == 0:\n"
	"        s = sum(v[0] + v[1] for v in d.values()) + sum(big[c::2])\n"
	"        os._exit(0 if s == sum(i + (-i if i % 3 == 0 else i * i) for i in range(N)) + sum(3 * x for x in range(c, 1000000, 2)) else 1)\n"
	"    kids.append(pid)\n"
	"for pid in kids:\n"
	"    ok = ok and os.waitpid(pid, 0)[1] == 0\n"
	"h = hashlib.sha256(repr(sorted(d.items())[::97]).encode()).hexdigest()\n"
	"print('ok' if ok else 'WRONG', h)\n"
	"if os.environ.get('USWAP_LIMIT'):\n"
	"    s = socket.socket(socket.AF_UNIX)\n"
	"    s.connect('\\0uswap/%d' % os.getpid())\n"
	"    text = b''\n"
	"    while True:\n"
	"        b = s.recv(65536)\n"
	"        if not b: break\n"
	"        text += b\n"
	"    c = dict(l.split(': ') for l in text.decode().splitlines())\n"
	"    rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]\n"
	"    print('swapout', int(c['swapout_pages']) > 0, 'forks', c['fork_events'], 'rss_kb', rss, 'pool', c['pool_bytes'])\n";

static void test_python(void **state)
{
	char path[256], cmd[512], plain[512], managed[512];

	(void)state;
	need("python3");
	snprintf(path, sizeof(path), "%s/build.py", dir);
	{
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs(python_script, f);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd), "env -u USWAP_LIMIT python3 %s", path);
	assert_int_equal(sh(cmd, plain, sizeof(plain)), 0);
	snprintf(cmd, sizeof(cmd), "%s run --limit %s -- python3 %s", USWAP_BIN, LIMIT_ARG, path);
	assert_int_equal(sh(cmd, managed, sizeof(managed)), 0);
	fprintf(stderr, "python3 plain: %s\npython3 under uswap: %s\n", plain, managed);
	assert_true(!strncmp(plain, "ok ", 3));
	/* the same structure, checked and hashed the same */
	assert_true(!strncmp(managed, plain, strlen(plain)));
	assert_non_null(strstr(managed, "swapout True forks 2"));
}

/* ---------------- sort ---------------- */

static void test_sort(void **state)
{
	char in[256], out_plain[256], out_managed[256], cmd[1024], res[64];
	char *argv[] = { USWAP_BIN, "run", "--limit", "8M", "--", "sort", "-S", "200M", "-o",
			 out_managed, in, NULL };
	struct rng r;
	uint64_t max_out = 0, v;
	struct stat st;
	pid_t pid;
	FILE *f;
	long i;

	(void)state;
	need("sort");
	snprintf(in, sizeof(in), "%s/lines.txt", dir);
	snprintf(out_plain, sizeof(out_plain), "%s/sorted-plain.txt", dir);
	snprintf(out_managed, sizeof(out_managed), "%s/sorted-managed.txt", dir);
	f = fopen(in, "w");
	assert_non_null(f);
	rng_seed(&r, 12345);
	for (i = 0; i < 400000; i++) /* about 22 MiB: nearly 3x the budget */
		fprintf(f, "%016llx %ld record of some length %llu\n",
			(unsigned long long)rng_next(&r), i,
			(unsigned long long)rng_below(&r, 1000000000));
	fclose(f);
	assert_int_equal(stat(in, &st), 0);
	assert_true((uint64_t)st.st_size > 2 * (8ul << 20));

	snprintf(cmd, sizeof(cmd), "LC_ALL=C sort -S 200M -o %s %s", out_plain, in);
	assert_int_equal(sh(cmd, NULL, 0), 0);
	setenv("LC_ALL", "C", 1);
	pid = st_spawn(argv, NULL);
	/* sample its counters while it sorts */
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (st_counter(pid, "swapout_pages", &v) && v > max_out)
			max_out = v;
		usleep(5000);
	}
	unsetenv("LC_ALL");
	fprintf(stderr, "sort under uswap: %llu pages swapped out (seen)\n",
		(unsigned long long)max_out);
	assert_true(max_out > 0);
	snprintf(cmd, sizeof(cmd), "cmp %s %s && echo same", out_plain, out_managed);
	assert_int_equal(sh(cmd, res, sizeof(res)), 0);
	assert_string_equal(res, "same");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redis),
		cmocka_unit_test(test_python),
		cmocka_unit_test(test_sort),
	};

	port_base = 20000 + (int)(getpid() % 20000);
	return cmocka_run_group_tests(tests, setup, teardown);
}
