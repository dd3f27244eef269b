// SPDX-License-Identifier: GPL-2.0
/*
 * abi_test: the shape of the goro.ko ioctl ABI, one open of /dev/goro
 * per test.
 *
 * What is proven here: every command's success path; every input word
 * that must be zero (flags, pad, each reserved word) is refused with
 * -EINVAL one bad field at a time, before any work is done (the output
 * is left untouched and no state changes); slot numbers at the limit,
 * past it and ~0; -EFAULT for each kind of bad pointer; -ENOTTY for
 * every command that is not exactly one of ours (unknown numbers with
 * our magic, our numbers with another size or direction, other magics);
 * output structs are pre-filled with 0xcc so a field the kernel forgot
 * to write cannot pass as a zero; and the mmap of the slot area.
 */
#include "goro_test.h"

/* Values of a u32 input word that must be zero. */
static const uint32_t bad_u32[] = { 1, 0x80000000u, ~0u };
/* Values of a u64 reserved word that must be zero. */
static const uint64_t bad_u64[] = { 1, 1ULL << 63, ~0ULL };


FIXTURE(goro) {
	int fd;
	struct goro_info info;
	struct goro_badptrs bp;
};

FIXTURE_SETUP(goro)
{
	self->fd = goro_open_or_skip();
	ASSERT_EQ(0, goro_get_info(self->fd, &self->info));
	ASSERT_EQ(0, goro_badptrs_init(&self->bp));
}

FIXTURE_TEARDOWN(goro)
{
	close(self->fd);
}

/* ---- INFO ---------------------------------------------------------------- */

TEST_F(goro, info)
{
	struct goro_info info;
	long page = sysconf(_SC_PAGESIZE);

	memset(&info, 0xcc, sizeof(info));
	info.flags = 0;
	memset(info.reserved, 0, sizeof(info.reserved));
	ASSERT_EQ(0, goro_ioc(self->fd, GORO_IOC_INFO, &info));

	EXPECT_EQ(GORO_ABI_VERSION, info.abi_version);
	EXPECT_EQ(0, info.flags);
	EXPECT_EQ(GORO_FEAT_PARK | GORO_FEAT_NOTE | GORO_FEAT_SHM,
		  info.features & (GORO_FEAT_PARK | GORO_FEAT_NOTE |
				   GORO_FEAT_SHM));
	/* Only bits this header knows for ABI version 1. */
	EXPECT_EQ(0, info.features & ~(GORO_FEAT_PARK | GORO_FEAT_NOTE |
				       GORO_FEAT_SHM | GORO_FEAT_TRACE |
				       GORO_FEAT_SYSMON | GORO_FEAT_NETPOLL |
				       GORO_FEAT_BLOCKREGS));
	EXPECT_LT(0, info.max_slots);
	EXPECT_GE(65536, info.max_slots);
	EXPECT_EQ(sizeof(struct goro_mslot), info.slot_size);
	EXPECT_LE((uint64_t)info.max_slots * info.slot_size, info.shm_size);
	EXPECT_EQ(0, info.shm_size % page);
	for (unsigned int i = 0; i < ARRAY_SIZE(info.reserved); i++)
		EXPECT_EQ(0, info.reserved[i]);

	/* The handshake is idempotent and needs no registration. */
	EXPECT_EQ(0, memcmp(&info, &self->info, sizeof(info)));
}

TEST_F(goro, info_bad_fields)
{
	struct goro_info info;

	for (unsigned int v = 0; v < ARRAY_SIZE(bad_u32); v++) {
		memset(&info, 0, sizeof(info));
		info.abi_version = 0xcccccccc;
		info.flags = bad_u32[v];
		EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_INFO, &info))
			TH_LOG("flags %#x", bad_u32[v]);
		/* refused before any work: nothing written back */
		EXPECT_EQ(0xcccccccc, info.abi_version);
	}
	for (unsigned int r = 0; r < ARRAY_SIZE(info.reserved); r++) {
		for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
			memset(&info, 0, sizeof(info));
			info.abi_version = 0xcccccccc;
			info.reserved[r] = bad_u64[v];
			EXPECT_EQ(-EINVAL,
				  goro_ioc(self->fd, GORO_IOC_INFO, &info))
				TH_LOG("reserved[%u] %#llx", r,
				       (unsigned long long)bad_u64[v]);
			EXPECT_EQ(0xcccccccc, info.abi_version);
		}
	}
}

/* ---- unknown commands ---------------------------------------------------- */

static const unsigned long known_cmds[] = {
	GORO_IOC_INFO, GORO_IOC_M_REGISTER, GORO_IOC_M_UNREGISTER,
	GORO_IOC_M_PARK, GORO_IOC_M_UNPARK, GORO_IOC_M_SWITCH,
	GORO_IOC_NOTE_SLEEP, GORO_IOC_NOTE_WAKEUP, GORO_IOC_NOTE_CLEAR,
	GORO_IOC_SYSMON_CONFIG, GORO_IOC_NETPOLL,
};

static bool is_known_cmd(unsigned long cmd)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(known_cmds); i++)
		if (known_cmds[i] == cmd)
			return true;
	return false;
}

TEST_F(goro, unknown_commands)
{
	static const unsigned int dirs[] = {
		_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_READ | _IOC_WRITE,
	};
	static const unsigned int sizes[] = { 0, 4, 8, 16, 24, 32, 40, 48,
					      56, 64, 128, 4096, 16383 };
	/* A zeroed buffer: had a command been accepted, it would succeed. */
	static uint64_t buf[4096 / 8];
	unsigned int dir, size, nr, magic;
	unsigned long cmd;
	unsigned int tried = 0;

	/* our magic: every number, direction and size but the ten commands */
	for (nr = 0; nr < 256; nr++) {
		for (dir = 0; dir < ARRAY_SIZE(dirs); dir++) {
			for (size = 0; size < ARRAY_SIZE(sizes); size++) {
				if (dirs[dir] == _IOC_NONE && sizes[size])
					continue;
				cmd = _IOC(dirs[dir], GORO_IOC_MAGIC, nr,
					   sizes[size]);
				if (is_known_cmd(cmd))
					continue;
				memset(buf, 0, sizeof(buf));
				EXPECT_EQ(-ENOTTY,
					  goro_ioc(self->fd, cmd, buf))
					TH_LOG("cmd %#lx", cmd);
				tried++;
			}
		}
	}
	/* our numbers and sizes under neighbouring magics */
	for (magic = GORO_IOC_MAGIC - 2; magic <= GORO_IOC_MAGIC + 2; magic++) {
		if (magic == GORO_IOC_MAGIC)
			continue;
		for (unsigned int i = 0; i < ARRAY_SIZE(known_cmds); i++) {
			cmd = known_cmds[i] &
			      ~(_IOC_TYPEMASK << _IOC_TYPESHIFT);
			cmd |= magic << _IOC_TYPESHIFT;
			memset(buf, 0, sizeof(buf));
			EXPECT_EQ(-ENOTTY, goro_ioc(self->fd, cmd, buf))
				TH_LOG("cmd %#lx", cmd);
			tried++;
		}
	}
	/* plain numbers without the _IOC encoding */
	for (cmd = 0x00; cmd < 0x20; cmd++) {
		EXPECT_EQ(-ENOTTY, goro_ioc(self->fd, 0xBE00 | cmd, buf));
		tried++;
	}
	EXPECT_EQ(-ENOTTY, goro_ioc(self->fd, 0xffffffffUL, buf));
	TH_LOG("%u unknown commands refused", tried + 1);

	/* and nothing of it registered us or touched the instance */
	EXPECT_EQ(-EPERM, goro_unregister(self->fd));
}

/* ---- bad pointers -------------------------------------------------------- */

TEST_F(goro, efault)
{
	static const struct {
		unsigned long cmd;
		bool write_back;
	} cmds[] = {
		{ GORO_IOC_INFO, true },
		{ GORO_IOC_M_REGISTER, true },
		{ GORO_IOC_M_UNREGISTER, false },
		{ GORO_IOC_M_PARK, false },
		{ GORO_IOC_M_UNPARK, false },
		{ GORO_IOC_M_SWITCH, false },
		{ GORO_IOC_NOTE_SLEEP, false },
		{ GORO_IOC_NOTE_WAKEUP, false },
		{ GORO_IOC_NOTE_CLEAR, false },
	};
	void *p;

	for (unsigned int i = 0; i < ARRAY_SIZE(cmds); i++) {
		for (int n = 0; n < GORO_NR_BADPTRS; n++) {
			if (!goro_badptr(&self->bp, n, _IOC_SIZE(cmds[i].cmd),
					 cmds[i].write_back, &p))
				continue;
			EXPECT_EQ(-EFAULT, goro_ioc(self->fd, cmds[i].cmd, p))
				TH_LOG("cmd %#lx ptr %p", cmds[i].cmd, p);
		}
	}
	/* The refused REGISTER into a read-only struct left no M behind. */
	EXPECT_EQ(-EPERM, goro_unregister(self->fd));
}

/* A registered M's unregister, park and switch with bad pointers. */
TEST_F(goro, efault_registered)
{
	static const unsigned long cmds[] = {
		GORO_IOC_M_REGISTER, GORO_IOC_M_UNREGISTER, GORO_IOC_M_PARK,
		GORO_IOC_M_SWITCH,
	};
	uint32_t slot;
	void *p;

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	for (unsigned int i = 0; i < ARRAY_SIZE(cmds); i++) {
		for (int n = 0; n < GORO_NR_BADPTRS; n++) {
			/*
			 * A read-only struct is readable: a second REGISTER
			 * then fails with -EBUSY before writing back.
			 */
			if (!goro_badptr(&self->bp, n, _IOC_SIZE(cmds[i]),
					 false, &p))
				continue;
			EXPECT_EQ(-EFAULT, goro_ioc(self->fd, cmds[i], p))
				TH_LOG("cmd %#lx ptr %p", cmds[i], p);
		}
	}
	/* still registered, in the same slot */
	EXPECT_EQ(-EBUSY, goro_register(self->fd, NULL));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

/* ---- M_REGISTER / M_UNREGISTER ------------------------------------------- */

TEST_F(goro, register_unregister)
{
	struct goro_m_register reg;
	uint32_t slot;

	memset(&reg, 0, sizeof(reg));
	reg.slot = 0xcccccccc;
	ASSERT_EQ(0, goro_ioc(self->fd, GORO_IOC_M_REGISTER, &reg));
	/* a fresh instance gives the lowest free slot */
	EXPECT_EQ(0, reg.slot);
	EXPECT_EQ(0, reg.flags);
	for (unsigned int i = 0; i < ARRAY_SIZE(reg.reserved); i++)
		EXPECT_EQ(0, reg.reserved[i]);

	EXPECT_EQ(-EBUSY, goro_register(self->fd, NULL));
	EXPECT_EQ(0, goro_unregister(self->fd));
	EXPECT_EQ(-EPERM, goro_unregister(self->fd));

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(0, slot);
	EXPECT_EQ(0, goro_unregister(self->fd));
}

TEST_F(goro, register_bad_fields)
{
	struct goro_m_register reg;

	for (unsigned int v = 0; v < ARRAY_SIZE(bad_u32); v++) {
		memset(&reg, 0, sizeof(reg));
		reg.slot = 0xcccccccc;
		reg.flags = bad_u32[v];
		EXPECT_EQ(-EINVAL,
			  goro_ioc(self->fd, GORO_IOC_M_REGISTER, &reg))
			TH_LOG("flags %#x", bad_u32[v]);
		EXPECT_EQ(0xcccccccc, reg.slot);
	}
	for (unsigned int r = 0; r < ARRAY_SIZE(reg.reserved); r++) {
		for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
			memset(&reg, 0, sizeof(reg));
			reg.slot = 0xcccccccc;
			reg.reserved[r] = bad_u64[v];
			EXPECT_EQ(-EINVAL,
				  goro_ioc(self->fd, GORO_IOC_M_REGISTER, &reg))
				TH_LOG("reserved[%u] %#llx", r,
				       (unsigned long long)bad_u64[v]);
			EXPECT_EQ(0xcccccccc, reg.slot);
		}
	}
	/* none of them registered the thread */
	EXPECT_EQ(-EPERM, goro_unregister(self->fd));
}

TEST_F(goro, unregister_bad_fields)
{
	struct goro_m_unregister unreg;

	ASSERT_EQ(0, goro_register(self->fd, NULL));
	for (unsigned int v = 0; v < ARRAY_SIZE(bad_u32); v++) {
		memset(&unreg, 0, sizeof(unreg));
		unreg.flags = bad_u32[v];
		EXPECT_EQ(-EINVAL,
			  goro_ioc(self->fd, GORO_IOC_M_UNREGISTER, &unreg));
		memset(&unreg, 0, sizeof(unreg));
		unreg.pad = bad_u32[v];
		EXPECT_EQ(-EINVAL,
			  goro_ioc(self->fd, GORO_IOC_M_UNREGISTER, &unreg));
	}
	for (unsigned int r = 0; r < ARRAY_SIZE(unreg.reserved); r++) {
		for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
			memset(&unreg, 0, sizeof(unreg));
			unreg.reserved[r] = bad_u64[v];
			EXPECT_EQ(-EINVAL,
				  goro_ioc(self->fd, GORO_IOC_M_UNREGISTER,
					   &unreg));
		}
	}
	/* still an M */
	EXPECT_EQ(-EBUSY, goro_register(self->fd, NULL));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

/* Bad fields are refused even when the caller is not an M (-EINVAL first). */
TEST_F(goro, unregister_bad_fields_unregistered)
{
	struct goro_m_unregister unreg = { .pad = 1 };

	EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_M_UNREGISTER, &unreg));
	EXPECT_EQ(-EPERM, goro_unregister(self->fd));
}

/* ---- M_PARK -------------------------------------------------------------- */

TEST_F(goro, park_not_registered)
{
	EXPECT_EQ(-EPERM, goro_park(self->fd, 0));
	EXPECT_EQ(-EPERM, goro_park(self->fd, GORO_NO_DEADLINE));
}

TEST_F(goro, park_bad_fields)
{
	struct goro_m_park park;

	ASSERT_EQ(0, goro_register(self->fd, NULL));
	/*
	 * deadline 0 has passed: a well-formed park returns -ETIMEDOUT at
	 * once, so -EINVAL can only come from the bad field.
	 */
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, 0));
	for (unsigned int v = 0; v < ARRAY_SIZE(bad_u32); v++) {
		memset(&park, 0, sizeof(park));
		/* bit 0 is GORO_PARK_NETPOLL (netpoll_test) */
		park.flags = bad_u32[v] == 1 ? GORO_PARK_NETPOLL << 1 :
					       bad_u32[v];
		EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_M_PARK, &park));
		memset(&park, 0, sizeof(park));
		park.pad = bad_u32[v];
		EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_M_PARK, &park));
	}
	for (unsigned int r = 0; r < ARRAY_SIZE(park.reserved); r++) {
		for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
			memset(&park, 0, sizeof(park));
			park.reserved[r] = bad_u64[v];
			EXPECT_EQ(-EINVAL,
				  goro_ioc(self->fd, GORO_IOC_M_PARK, &park));
		}
	}
	/* and with a pending token, a bad park must not consume it */
	ASSERT_EQ(0, goro_unpark(self->fd, 0));
	memset(&park, 0, sizeof(park));
	park.flags = GORO_PARK_NETPOLL << 1;
	EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_M_PARK, &park));
	EXPECT_EQ(0, goro_park(self->fd, 0));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

/* ---- M_UNPARK ------------------------------------------------------------ */

TEST_F(goro, unpark_slots)
{
	const uint32_t max = self->info.max_slots;
	uint32_t slot;

	/* no M at all: every valid slot is free */
	EXPECT_EQ(-ESRCH, goro_unpark(self->fd, 0));
	EXPECT_EQ(-ESRCH, goro_unpark(self->fd, max - 1));
	/* the limit, past it, far past it */
	EXPECT_EQ(-EINVAL, goro_unpark(self->fd, max));
	EXPECT_EQ(-EINVAL, goro_unpark(self->fd, max + 1));
	EXPECT_EQ(-EINVAL, goro_unpark(self->fd, 0x80000000u));
	EXPECT_EQ(-EINVAL, goro_unpark(self->fd, ~0u));

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(0, goro_unpark(self->fd, slot));
	EXPECT_EQ(-ESRCH, goro_unpark(self->fd, slot + 1));
	EXPECT_EQ(-EINVAL, goro_unpark(self->fd, max));
	/* the token given to ourselves: the park returns 0 at once */
	EXPECT_EQ(0, goro_park(self->fd, 0));
	EXPECT_EQ(0, goro_unregister(self->fd));
	EXPECT_EQ(-ESRCH, goro_unpark(self->fd, slot));
}

TEST_F(goro, unpark_bad_fields)
{
	struct goro_m_unpark unpark;
	uint32_t slot;

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	for (unsigned int v = 0; v < ARRAY_SIZE(bad_u32); v++) {
		memset(&unpark, 0, sizeof(unpark));
		unpark.slot = slot;
		unpark.flags = bad_u32[v];
		EXPECT_EQ(-EINVAL,
			  goro_ioc(self->fd, GORO_IOC_M_UNPARK, &unpark));
	}
	for (unsigned int r = 0; r < ARRAY_SIZE(unpark.reserved); r++) {
		for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
			memset(&unpark, 0, sizeof(unpark));
			unpark.slot = slot;
			unpark.reserved[r] = bad_u64[v];
			EXPECT_EQ(-EINVAL,
				  goro_ioc(self->fd, GORO_IOC_M_UNPARK,
					   &unpark));
		}
	}
	/* none of the refused calls gave the token */
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, 0));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

/* ---- M_SWITCH ------------------------------------------------------------ */

TEST_F(goro, switch_errors)
{
	const uint32_t max = self->info.max_slots;
	uint64_t t0, deadline;
	uint32_t slot;

	EXPECT_EQ(-EPERM, goro_switch(self->fd, 0, 0));

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	/*
	 * A far deadline: on any of these errors the caller must not park
	 * at all, so each call returns well before it.
	 */
	t0 = goro_now_ns();
	deadline = t0 + 5 * NSEC_PER_SEC;
	EXPECT_EQ(-EINVAL, goro_switch(self->fd, slot, deadline));
	EXPECT_EQ(-ESRCH, goro_switch(self->fd, slot + 1, deadline));
	EXPECT_EQ(-ESRCH, goro_switch(self->fd, max - 1, deadline));
	EXPECT_EQ(-EINVAL, goro_switch(self->fd, max, deadline));
	EXPECT_EQ(-EINVAL, goro_switch(self->fd, max + 1, deadline));
	EXPECT_EQ(-EINVAL, goro_switch(self->fd, ~0u, deadline));
	EXPECT_GT(2 * NSEC_PER_SEC, goro_now_ns() - t0);

	/* a switch to its own slot neither gives nor takes the token */
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, 0));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

TEST_F(goro, switch_bad_fields)
{
	struct goro_m_switch sw;

	ASSERT_EQ(0, goro_register(self->fd, NULL));
	for (unsigned int v = 0; v < ARRAY_SIZE(bad_u32); v++) {
		memset(&sw, 0, sizeof(sw));
		sw.slot = 1;
		sw.flags = bad_u32[v];
		EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_M_SWITCH, &sw));
	}
	for (unsigned int r = 0; r < ARRAY_SIZE(sw.reserved); r++) {
		for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
			memset(&sw, 0, sizeof(sw));
			sw.slot = 1;
			sw.reserved[r] = bad_u64[v];
			EXPECT_EQ(-EINVAL,
				  goro_ioc(self->fd, GORO_IOC_M_SWITCH, &sw));
		}
	}
	/* with bad fields, even the -EPERM of an unregistered caller waits */
	EXPECT_EQ(0, goro_unregister(self->fd));
	memset(&sw, 0, sizeof(sw));
	sw.flags = 1;
	EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_M_SWITCH, &sw));
}

/* ---- mmap of the slot area ----------------------------------------------- */

TEST_F(goro, mmap_slots)
{
	struct goro_mslot *shm;
	uint32_t slot;

	shm = mmap(NULL, self->info.shm_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, shm);

	for (uint32_t i = 0; i < self->info.max_slots; i++) {
		ASSERT_EQ(0, shm[i].tid) TH_LOG("slot %u", i);
	}

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(goro_gettid(), (pid_t)shm[slot].tid);
	EXPECT_EQ(0, shm[slot].kflags);
	EXPECT_EQ(0, shm[slot].nparks);
	EXPECT_EQ(0, shm[slot].nwakes);

	/* user fields are ours to write; the kernel must not mind */
	shm[slot].curg = 42;
	shm[slot].since_ns = goro_now_ns();
	shm[slot].status = GORO_MSTATUS_RUNNING;
	shm[slot].p = 1;

	/* an unpark counts as a wake; a park finding the token never slept */
	EXPECT_EQ(0, goro_unpark(self->fd, slot));
	EXPECT_EQ(1, shm[slot].nwakes);
	EXPECT_EQ(0, goro_park(self->fd, GORO_NO_DEADLINE));
	EXPECT_EQ(0, shm[slot].nparks);
	/*
	 * A park that sleeps until its deadline counts.  One whose deadline
	 * passed before it could sleep (a stalled VM) does not: try again.
	 */
	for (int i = 0; i < 20 && !shm[slot].nparks; i++)
		EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, goro_now_ns() +
						20 * NSEC_PER_MSEC));
	EXPECT_EQ(1, shm[slot].nparks);
	EXPECT_EQ(42, shm[slot].curg);

	EXPECT_EQ(0, goro_unregister(self->fd));
	EXPECT_EQ(0, shm[slot].tid);

	/* a new M in the same slot starts from zero counters */
	ASSERT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(goro_gettid(), (pid_t)shm[slot].tid);
	EXPECT_EQ(0, shm[slot].nparks);
	EXPECT_EQ(0, shm[slot].nwakes);
	EXPECT_EQ(0, goro_unregister(self->fd));

	EXPECT_EQ(0, munmap(shm, self->info.shm_size));
}

/* The area outlives the fd: the mapping holds the instance. */
TEST_F(goro, mmap_after_close)
{
	struct goro_mslot *shm;
	uint32_t slot;

	shm = mmap(NULL, self->info.shm_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, shm);
	ASSERT_EQ(0, goro_register(self->fd, &slot));
	ASSERT_EQ(0, close(self->fd));
	self->fd = open("/dev/null", O_RDONLY);	/* for the teardown */
	EXPECT_EQ(goro_gettid(), (pid_t)shm[slot].tid);
	shm[slot].curg = 7;
	EXPECT_EQ(0, munmap(shm, self->info.shm_size));
}

TEST_F(goro, mmap_bad)
{
	const size_t size = self->info.shm_size;
	const long page = sysconf(_SC_PAGESIZE);
	void *p;

	/* a prefix of the area is fine */
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, munmap(p, page));
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* never executable, not even later */
	EXPECT_EQ(-1, mprotect(p, size, PROT_READ | PROT_EXEC));
	EXPECT_EQ(0, munmap(p, size));

	/* bad offsets: one page in, the end, far past it */
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, page);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, size);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, 1L << 40);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);

	/* bad sizes: one page more, much more */
	p = mmap(NULL, size + page, PROT_READ, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 64 * size, PROT_READ, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);

	/* a private copy would never see the kernel's writes */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);

	/* executable: -EINVAL from goro, or -EPERM from a noexec /dev */
	p = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_TRUE(errno == EINVAL || errno == EPERM)
		TH_LOG("errno %d", errno);
}

/* ---- -ENOSPC: every slot taken ------------------------------------------- */

/*
 * max_slots threads (1024 today) each register and wait; the next
 * registration must fail with -ENOSPC, and succeed once one M leaves.
 * Threads get the minimum stack, so 1024 of them cost a few MB even in
 * the VM; creating them under TCG takes about a second.
 */
struct slot_filler {
	int fd;
	pthread_barrier_t *registered;
	pthread_barrier_t *release;
	int ret;
	uint32_t slot;
};

static void *slot_filler_fn(void *arg)
{
	struct slot_filler *sf = arg;

	sf->ret = goro_register(sf->fd, &sf->slot);
	pthread_barrier_wait(sf->registered);
	pthread_barrier_wait(sf->release);
	if (!sf->ret)
		sf->ret = goro_unregister(sf->fd);
	return NULL;
}

TEST_F_TIMEOUT(goro, enospc, 180)
{
	const unsigned int n = self->info.max_slots;
	pthread_barrier_t registered, release;
	struct slot_filler *sf;
	pthread_t *tids;
	pthread_attr_t attr;
	unsigned char *seen;
	uint32_t slot;

	sf = calloc(n, sizeof(*sf));
	tids = calloc(n, sizeof(*tids));
	seen = calloc(n, 1);
	ASSERT_TRUE(sf && tids && seen);
	ASSERT_EQ(0, pthread_attr_init(&attr));
	ASSERT_EQ(0, pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN));
	ASSERT_EQ(0, pthread_barrier_init(&registered, NULL, n + 1));
	ASSERT_EQ(0, pthread_barrier_init(&release, NULL, n + 1));

	for (unsigned int i = 0; i < n; i++) {
		sf[i].fd = self->fd;
		sf[i].registered = &registered;
		sf[i].release = &release;
		ASSERT_EQ(0, pthread_create(&tids[i], &attr, slot_filler_fn,
					    &sf[i]))
			TH_LOG("thread %u of %u", i, n);
	}
	pthread_barrier_wait(&registered);

	for (unsigned int i = 0; i < n; i++) {
		EXPECT_EQ(0, sf[i].ret) TH_LOG("thread %u", i);
		if (!sf[i].ret && sf[i].slot < n) {
			EXPECT_EQ(0, seen[sf[i].slot]);
			seen[sf[i].slot] = 1;
		}
	}
	/* all taken: the main thread is the one too many */
	EXPECT_EQ(-ENOSPC, goro_register(self->fd, &slot));
	EXPECT_EQ(-EPERM, goro_unregister(self->fd));

	pthread_barrier_wait(&release);
	for (unsigned int i = 0; i < n; i++) {
		pthread_join(tids[i], NULL);
		EXPECT_EQ(0, sf[i].ret) TH_LOG("unregister, thread %u", i);
	}

	/* every slot free again */
	EXPECT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(0, slot);
	EXPECT_EQ(0, goro_unregister(self->fd));

	pthread_barrier_destroy(&registered);
	pthread_barrier_destroy(&release);
	pthread_attr_destroy(&attr);
	free(seen);
	free(tids);
	free(sf);
}

TEST_HARNESS_MAIN
