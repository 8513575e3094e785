package kernels

import (
	"fmt"
	"os"
	"strings"
)

// QWGPU_TUNE overrides kernel layouts for speed sweeps on a real GPU, so
// that one lease can compare layouts through `qwgpu bench` without a
// rebuild, e.g.
//
//	QWGPU_TUNE=matmul=128x64-8x8,bk=16,prefill=16x8x16,chunk=64,attn_splits=64,attn_lanes=4,matvec_tpr=32,qkv_tpr=16
//
// matvec_tpr, matvec_rows and matvec_wg set the matvec's threads per row
// group, rows per group and workgroup size (matvecLayout); matvec_cpt the
// consecutive chunks of quants a thread takes (1 or 2, matvecVars);
// matvec_wide=-1 makes Q4_K and Q5_K take them too, instead of their
// 16-byte loads (quadLoads);
// matvec_norm=N makes decode steps of more than N rows normalise x in a
// standalone rmsnorm before their matvecs instead of in every workgroup
// of the matvec (matvecNormRows; 8 by default since run 17, and one token
// of the x-in-registers layout since run 18: MatVecFusedNorm); -1 gives
// one token standalone norms too.
// matvec_xreg=R gives one-token matvecs of block types the x-in-registers
// layout, R rows a workgroup whose threads each keep a unit's x for all R
// rows (MatVecVars.XReg; the same sums as each format's other one-token
// layout, in another order; Q4_K's default since run 18, R = 4), -1 none;
// matvec_xg=N issuing N rows' loads together; matvec_xfold=-1 makes it
// scale every Q4_K value instead of summing the quants unscaled against x
// scaled to their places and applying the scales once a unit
// (MatVecVars.XFold, the default).
// matvec_red1=-1 sums each of a row group's partials over its lanes through
// a tree, as before run 19, instead of in one thread an output after one
// barrier (MatVecVars.Red1). matvec_maxr=N lets matvecLayout give a group
// up to N rows (2 by default) while its partial sums stay within 64 a
// thread and the workgroups many enough (run 19: 16 rows +1.1% at N = 4,
// within the spread).
// matvec_minrows=N and matvec_mincols=M keep the matvec_xreg override to
// dispatches of at least N rows of at least M values (e.g. the LM head
// alone), the other matrices in their defaults.
// matvec_qsum=-1 makes one-token Q8_0 matvecs scale every value by its
// block's d, as before run 15, instead of applying d to the block's sums
// and reading the bytes without shifts (MatVecVars.Q8Sum: a different
// summation order, +1.6% at 0.6B on the H200).
// (matvec_unroll, which wrote the token loops out, changed nothing on the
// H200 in run 12 and is gone, as are matmul_narrow and matvec_qfold, which
// did not gain in run 13, matvec_tred, which lost in run 14, and in run
// 15 the same sums for Q4_K (matvec_qsum there: −3 … −42%) and
// matvec_tok, a batched layout of a thread a token (±0 … −19%), and in
// run 16 matvec_max, 16-token batches through the tiled matmul (−49 …
// −61%), matvec_qlow, Q4_K quads decoded a word at a time (+0.2%), and
// matvec_xc, 16 tokens' x staged with 64 lanes a row (−19%), and in run
// 17 matvec_qpipe, the Q4_K quads' next loads issued a quad ahead (−4.1%),
// matvec_qprobe, timing probes whose values were wrong, matvec_qxs, the
// quads' x staged in padded workgroup memory (−38%; −14.5% with 256
// threads), qkv_fold, qkv_norm_rope folded into decode attention (−2.6%
// at 0.6B Q8_0 and 8B Q4_K, −7.2% for bf16 one token), and matvec_qprobe=4,
// x read at the addresses of quants repacked for whole-line loads (+8.8%,
// a probe with wrong values), and in run 19 matvec_probe, timing probes
// with wrong values (16 rows: token 0's x for all +50%, no tree +31%, no
// weight loads +8.5%; 8B Q4_K XReg: scales not decoded +12%, quants
// +14%), and in run 20 matvec_xstage, x staged in workgroup memory (the
// one-token default from run 13 to run 20, when it lost 8.6% at 8B bf16
// and 1.1% at 0.6B; batches lost 23% in run 12), and matvec_wide=1, Q8_0
// read in groups of 4 blocks, 144 bytes a thread (0.6B −25% in runs 10–11,
// the 0.6B LM head alone −8.9% in run 20).)
// attn_unroll=-1 makes attention_decode load a key row's units, and its
// rows' values, one after another, as before run 13 (AttentionVars.AUNROLL
// is the default: the same sums, 1.86× at depth 32K). attn_qreg=-1 makes
// each lane of the batched layout reload its query values for every key
// unit instead of keeping them in registers (AttentionVars.QREG, the
// default since run 14; the same sums). qkv_wg and qkv_tpr set the fused
// one-token qkv kernel's workgroup size (512 by default since run 14, 256
// on GL) and lanes a row.
//
// It is a measuring tool, not a setting: an invalid value is reported on
// stderr and ignored; a layout a kernel cannot take fails that kernel's
// preparation with the kernel's own error.
func init() {
	if s := os.Getenv("QWGPU_TUNE"); s != "" {
		if err := parseTune(s); err != nil {
			fmt.Fprintf(os.Stderr, "qwgpu: QWGPU_TUNE=%s: %v (ignored)\n", s, err)
			tune = tuneKnobs{}
		}
	}
}

// FusedQKVDecode selects, for one-token decode steps, the fused
// qkv_norm_rope kernel (projection, head norms and RoPE in one dispatch of
// one workgroup per head) over a matvec and the rows variant (two
// dispatches, the projection spread over many workgroups). A measuring
// knob: QWGPU_TUNE=qkv_fused=false.
var FusedQKVDecode = true

// SetTune sets the layout knobs to QWGPU_TUNE's settings followed by s
// (the same key=value list), so that one process can measure several
// layouts (qwgpu bench --tune): ops prepared before keep their layouts,
// those prepared after take the new ones. An invalid s is an error here.
// Not safe while kernels are being prepared.
func SetTune(s string) error {
	tune, FusedQKVDecode = tuneKnobs{}, true
	if env := os.Getenv("QWGPU_TUNE"); env != "" {
		if err := parseTune(env); err != nil {
			tune, FusedQKVDecode = tuneKnobs{}, true // reported once at start, ignored
		}
	}
	if s == "" {
		return nil
	}
	return parseTune(s)
}

func parseTune(s string) error {
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q is not key=value", kv)
		}
		var err error
		var n int
		switch k {
		case "matmul":
			t := &tune.matmulTile
			_, err = fmt.Sscanf(v, "%dx%d-%dx%d", &t.BT, &t.BR, &t.TT, &t.TR)
		case "prefill":
			t := &tune.prefillTiles
			_, err = fmt.Sscanf(v, "%dx%dx%d", &t.bq, &t.lanes, &t.bk)
		case "qkv_fused":
			_, err = fmt.Sscanf(v, "%t", &FusedQKVDecode)
		case "bk", "chunk", "attn_splits", "attn_lanes", "attn_unroll", "attn_qreg", "matvec_tpr", "matvec_rows", "matvec_wg", "matvec_cpt", "matvec_wide", "matvec_qsum", "matvec_norm", "matvec_xreg", "matvec_xg", "matvec_xfold", "matvec_red1", "matvec_maxr", "matvec_minrows", "matvec_mincols", "qkv_tpr", "qkv_wg", "rmsnorm_wg", "argmax_chunk":
			if _, err = fmt.Sscanf(v, "%d", &n); err == nil {
				*map[string]*int{"bk": &tune.matmulBK, "chunk": &tune.decodeChunk, "attn_splits": &tune.decodeSplits, "attn_lanes": &tune.decodeLanes, "attn_unroll": &tune.decodeUnroll, "attn_qreg": &tune.decodeQReg,
					"matvec_tpr": &tune.matvecTPR, "matvec_rows": &tune.matvecR, "matvec_wg": &tune.matvecWG, "matvec_cpt": &tune.matvecCPT, "matvec_wide": &tune.matvecWide, "matvec_qsum": &tune.matvecQSum, "matvec_norm": &tune.matvecNorm, "matvec_xreg": &tune.matvecXReg, "matvec_xg": &tune.matvecXG, "matvec_xfold": &tune.matvecXFold, "matvec_red1": &tune.matvecRed1, "matvec_maxr": &tune.matvecMaxR, "matvec_minrows": &tune.matvecMinRows, "matvec_mincols": &tune.matvecMinCols,
					"qkv_tpr": &tune.qkvTPR, "qkv_wg": &tune.qkvWG, "rmsnorm_wg": &tune.rmsnormWG, "argmax_chunk": &tune.argmaxChunk}[k] = n
			}
		default:
			return fmt.Errorf("unknown key %q", k)
		}
		if k == "matvec_wide" && n > 0 {
			return fmt.Errorf("matvec_wide=%d: Q8_0's groups of 4 blocks were removed after run 20; -1 is the value left", n)
		}
		if err != nil {
			return fmt.Errorf("%s=%s: %v", k, v, err)
		}
	}
	return nil
}
