// QEMU TCG plugin: exact guest instruction counts between marker calls.
//
// Debian's QEMU 7.2 loads plugins (API version 1) but ships no plugin header,
// so the few API functions used are declared here. Every executed guest
// instruction adds 1 to a counter (an inline operation, no callback); each
// execution of the instruction at `marker=ADDR` appends the counter's value
// to a list written to `out=PATH` when QEMU exits. The runner firmware calls
// its marker before every op and after the last, so consecutive differences
// are per-op instruction counts. These are instructions, not cycles.
//
// With `pcs=PATH` it also counts each translated instruction separately and
// writes "address count" lines there (tools/profile_device.py turns them
// into a per-function profile).
//
// build: cc -shared -fPIC -O2 -o libdtmm_icount.so icount_plugin.c
// use:   qemu-system-arm ... -plugin libdtmm_icount.so,marker=0x1234,out=counts.txt[,pcs=pcs.txt]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb* tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void* userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void* userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb* tb);
struct qemu_plugin_insn* qemu_plugin_tb_get_insn(const struct qemu_plugin_tb* tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn* insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn* insn,
                                                enum qemu_plugin_op op, void* ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn* insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void* userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void* userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;  // one vCPU: no concurrent updates
static uint64_t marker;
static char out_path[4096];
static uint64_t* hits;
static size_t num_hits, cap_hits;

// Per-instruction counters for pcs=: in fixed blocks, since QEMU keeps the
// address of each counter it was given.
enum { kBlock = 1 << 16 };
struct pc_block {
  uint64_t addr[kBlock], count[kBlock];
  struct pc_block* next;
};
static char pcs_path[4096];
static struct pc_block *pcs_first, *pcs_last;
static size_t pcs_used = kBlock;

static uint64_t* pc_counter(uint64_t addr) {
  if (pcs_used == kBlock) {
    struct pc_block* b = calloc(1, sizeof(*b));
    if (!b) abort();
    if (pcs_last)
      pcs_last->next = b;
    else
      pcs_first = b;
    pcs_last = b;
    pcs_used = 0;
  }
  pcs_last->addr[pcs_used] = addr;
  return &pcs_last->count[pcs_used++];
}

static void on_marker(unsigned int vcpu, void* userdata) {
  (void)vcpu;
  (void)userdata;
  if (num_hits == cap_hits) {
    cap_hits = cap_hits ? 2 * cap_hits : 1024;
    hits = realloc(hits, cap_hits * sizeof(*hits));
    if (!hits) abort();
  }
  hits[num_hits++] = executed;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  const size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; ++i) {
    struct qemu_plugin_insn* insn = qemu_plugin_tb_get_insn(tb, i);
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
    if (pcs_path[0])
      qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                 pc_counter(qemu_plugin_insn_vaddr(insn)), 1);
    if ((qemu_plugin_insn_vaddr(insn) & ~(uint64_t)1) == marker)
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
  }
}

static void write_counts(qemu_plugin_id_t id, void* userdata) {
  (void)id;
  (void)userdata;
  FILE* f = fopen(out_path, "w");
  if (!f) return;
  fprintf(f, "total %llu\n", (unsigned long long)executed);
  for (size_t i = 0; i < num_hits; ++i) fprintf(f, "%llu\n", (unsigned long long)hits[i]);
  fclose(f);
  if (!pcs_path[0] || !(f = fopen(pcs_path, "w"))) return;
  for (struct pc_block* b = pcs_first; b; b = b->next)
    for (size_t i = 0; i < (b == pcs_last ? pcs_used : kBlock); ++i)
      if (b->count[i])
        fprintf(f, "%llx %llu\n", (unsigned long long)b->addr[i], (unsigned long long)b->count[i]);
  fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t* info, int argc,
                                                               char** argv) {
  (void)info;
  for (int i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "marker=", 7) == 0) marker = strtoull(argv[i] + 7, NULL, 0) & ~1ull;
    if (strncmp(argv[i], "out=", 4) == 0) snprintf(out_path, sizeof(out_path), "%s", argv[i] + 4);
    if (strncmp(argv[i], "pcs=", 4) == 0) snprintf(pcs_path, sizeof(pcs_path), "%s", argv[i] + 4);
  }
  if (!marker || !out_path[0]) {
    fprintf(stderr, "dtmm icount plugin: needs marker=ADDR,out=PATH\n");
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, write_counts, NULL);
  return 0;
}
