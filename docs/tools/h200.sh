#!/usr/bin/env bash
# The H200 measurements docs/PERFORMANCE.md's "Next measurements" asks for,
# in parts that each fit one device call (10 minutes), e.g.
#
#   run(command: "bash docs/tools/h200.sh base q8", carry: [".gl", ".bin"])
#
# with .bin/qwgpu built here by `go build -buildvcs=true -ldflags "-s -w" -o
# .bin/qwgpu ./cmd/qwgpu` (so that the tables name the commit) and .gl as
# ../shared/docs/gpu-machine.md makes it. The tree that travels is near its
# 64 MiB limit with .bin (22 MB); to carry a second build (.bin2, which part
# x16 compares against), gzip both into .binz and unpack them first:
#   run(command: "mkdir -p .bin .bin2 && gunzip -c .binz/new.gz > .bin/qwgpu
#     && gunzip -c .binz/old.gz > .bin2/qwgpu && chmod +x .bin/qwgpu
#     .bin2/qwgpu && bash docs/tools/h200.sh x16", carry: [".gl", ".binz"]) Each part appends its output to
# $OUT/<part>.txt. Parts run in the order given; several parts in one call
# share a lease, which is what a ratio between them needs. Times on the
# H200 (run 14): `gqa4 tred` 451 s with the machine's start (~90 s), `base
# q8` 53 s, `q4k bf16` 504 s (the 8B Q4_K quantized at load: 123 s of it);
# a call takes 1-2 minutes more to start a cold machine. Parts that measured
# knobs since removed are in git history (run 14: batch, rows, tred,
# defaults, depthtune; run 15: tok, qsum; run 16: batchmm, the x16 sweep, x16xc;
# run 17: the q4k probes and qpipe, qxs, fold, checknew, xnorm, x16norm, q4kp). Run 15's call (`check tok qsum
# q4k bf16`) found only 225 s of device time left after a start of ~275 s.
# Run 16: `check q8 q4k bf16` 360 s, `x16 check bf16 q4k` 385 s, `x16 q8prof
# serve06` 125 s, `q8 check` 28 s; its five cold starts took 65-110 s each.
# Run 17: `serve06 x16norm x16prof q8prof q4k bf16` 380 s (start ~180 s), `fold xnorm q4k
# bf8b checknew` 373 s (the q4k part with 8 settings ~250 s of it), `q4kp` 122 s (the
# 8B quantized at load in 115 s of it). Run 18: `xreg bf8b` 300 s with the start (the
# 8B quantized at load in 103 s), `q4kdef bf8b` 310 s, `q4ksmall` 44 s (starts of
# 60-90 s included). Run 19: `probes16 xnorm2 bf8b` 291 s, `red1` 47 s, `q4klay` 368 s (two
# 8B quantizations), `red1def` 133 s (warm), `check q8par serve06` 59 s, all with their starts
# but red1def; the probes and normred are in git history (ed13e13, 8d9bf37). Run 20: `q8x` 31 s,
# `q8prof` 29 s (warm), `q8stage q4norm` 364 s (two 8B quantizations, 120-129 s each), `hoist
# check` 393 s, `unstaged` 274 s, `attnshort` 81 s, each after a start of 60-90 s; the parts
# that measured x staging (q8stage, hoist, unstaged) are in git history (f77c6af), the knob removed.
set -uo pipefail
cd "$(dirname "$0")/../.."
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export XDG_RUNTIME_DIR=/tmp
out=${OUT:-/tmp}
q=.bin/qwgpu

# show runs one command, printing it first, into the part's file.
show() {
	echo "== $*" | tee -a "$out/$part.txt"
	"$@" 2>&1 | tee -a "$out/$part.txt"
}

for part in "$@"; do
	case $part in
	base) # the build's own reference figures, where a 16-row step's time goes, and the
		# golden models validated on this build (issue 13: validate passes on the speed build)
		show $q info
		show $q bench --shape 0.6B -p 512 -n 128 --parallel 16 --profile
		# the fused qkv's 32 workgroups with more threads, or fewer lanes a row
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 \
			--tune ';qkv_wg=512;qkv_wg=1024;qkv_tpr=16;qkv_wg=1024,qkv_tpr=16'
		for g in testdata/golden/*/; do
			show $q validate --model "$g" --golden "$g/golden.safetensors"
		done ;;
	q4k) # 8B Q4_K: one token with standalone norms before its normalising matvecs
		# (matvec_norm=-1: the quads' loads of the norm weights go), then the default with
		# its step's profile (the last --tune setting is what --profile profiles; issue 11:
		# 2.5x bf16; part bf16 or bf8b gives the ratio's reference); and 0.6B bf16 likewise
		show $q bench --shape 8B --dtype q4_k -p 0 -n 128 --reps 2 --profile --tune 'matvec_norm=-1;'
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --tune 'matvec_norm=-1;' ;;
	xreg) # one-token matvecs of block types with x in registers (matvec_xreg=R rows a
		# workgroup, MatVecVars.XReg; issue 11), its loops over rows written out by the
		# template since run 18 (where the looped build lost 27-36%): 8B Q4_K against the
		# default and standalone norms, R = 4, 8, 16 with Q4_K's quants summed unscaled
		# (matvec_xfold), R = 8 without, R = 16 with 2 rows' loads together; the last
		# profiled; 0.6B Q8_0 with standalone norms and R = 2, 4, 8, and 0.6B bf16, the
		# reference for Q8_0 >= bf16; then GPU against CPU on the quantized test files
		# with R = 16 and xfold (Q4_K quads, Q6_K and Q8_0 through the new code)
		show $q bench --shape 8B --dtype q4_k -p 0 -n 128 --reps 2 --profile \
			--tune ';matvec_norm=-1;matvec_xreg=8;matvec_xreg=4,matvec_xfold=1;matvec_xreg=8,matvec_xfold=1;matvec_xreg=16,matvec_xfold=1,matvec_xg=2;matvec_xreg=16,matvec_xfold=1'
		show $q bench --shape 0.6B --dtype q8_0 -p 0 -n 128 --reps 3 \
			--tune ';matvec_norm=-1;matvec_xreg=2;matvec_xreg=4;matvec_xreg=8'
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3
		for f in testdata/gguf/small-tied-bf16-q4_k_m.gguf testdata/gguf/tiny-tied-f32-q8_0.gguf; do
			echo "QWGPU_TUNE=matvec_xreg=16,matvec_xfold=1" >>"$out/$part.txt"
			QWGPU_TUNE=matvec_xreg=16,matvec_xfold=1 show $q validate --model $f
		done ;;
	q4kdef) # the Q4_K default of run 18 (x in registers, 4 rows a workgroup, quants summed
		# unscaled, standalone norms) against the old quads with fused norms and against 64
		# threads, at 8B, 1.7B and 0.6B, then the Q4_K_M test file validated in the defaults
		# (issue 11)
		show $q bench --shape 8B --dtype q4_k -p 0 -n 128 --reps 3 --profile \
			--tune 'matvec_xreg=-1;matvec_xreg=4,matvec_wg=64;'
		show $q bench --shape 1.7B --dtype q4_k -p 0 -n 128 --reps 3 --tune 'matvec_xreg=-1;'
		show $q bench --shape 0.6B --dtype q4_k -p 0 -n 128 --reps 3 --tune 'matvec_xreg=-1;'
		show $q validate --model testdata/gguf/small-tied-bf16-q4_k_m.gguf ;;
	q4ksmall) # the Q4_K default kept to rows of 2,048 values or more (run 18 call 5: 0.6B lost
		# 5.9% with every matrix in XReg), at 1.7B and 0.6B (issue 11)
		show $q bench --shape 1.7B --dtype q4_k -p 0 -n 128 --reps 3 --tune 'matvec_xreg=-1;'
		show $q bench --shape 0.6B --dtype q4_k -p 0 -n 128 --reps 3 --tune 'matvec_xreg=-1;' ;;
	xnorm2) # the x-in-registers matvec with the norm inside, x² summed from its own loads
		# (matvec_norm=8 for one token), against the default's standalone norms, at R = 4 and 8;
		# the default profiled (the last setting); the Q4_K_M test file validated with it (issue 11;
		# run 19 also ran matvec_probe=4 and 5 here, the probes since removed)
		show $q bench --shape 8B --dtype q4_k -p 0 -n 128 --reps 3 --profile \
			--tune 'matvec_norm=8;matvec_norm=8,matvec_xreg=8;'
		echo "QWGPU_TUNE=matvec_xreg=4,matvec_norm=8" >>"$out/$part.txt"
		QWGPU_TUNE=matvec_xreg=4,matvec_norm=8 show $q validate --model testdata/gguf/small-tied-bf16-q4_k_m.gguf ;;
	red1) # the matvec's partials summed one thread an output after one barrier, a warp's
		# threads starting at different lanes (matvec_red1=1; issue 12 after run 19's probes:
		# no tree +31% at 16 rows, token 0's x +50%), with up to 4 rows a group where the
		# sums fit (matvec_maxr=4), every group 4 rows, 16 and 128 lanes; 0.6B bf16 tg128 and
		# x16 in one process; then 0.6B Q8_0 and bf16 tg128 with it (issue 11)
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --parallel 16 \
			--tune ';matvec_red1=1;matvec_red1=1,matvec_maxr=4;matvec_red1=1,matvec_rows=4;matvec_red1=1,matvec_tpr=16;matvec_red1=1,matvec_tpr=128'
		show $q bench --shape 0.6B --dtype q8_0 -p 0 -n 128 --reps 3 --tune ';matvec_red1=1'
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --tune ';matvec_red1=1' ;;
	red1def) # Red1 as the default (since a55b93a) against the tree (matvec_red1=-1), one
		# process each: 0.6B bf16 tg128 and 2-16 sequences (issue 12: x16 >= 6x tg128), 0.6B
		# Q8_0 and bf16 tg128 (issue 11: Q8_0 >= bf16), 8B bf16 tg128 and x16
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --parallel 2,4,8,16 --tune 'matvec_red1=-1;'
		show $q bench --shape 0.6B --dtype q8_0 -p 0 -n 128 --reps 3 --tune 'matvec_red1=-1;'
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3
		show $q bench --shape 8B -p 512 -n 128 --reps 2 --parallel 16 --tune 'matvec_red1=-1;' ;;
	q4klay) # Q4_K with its scales unpacked at load (160-byte device blocks), this build (.bin),
		# against the file's packing in the build before it (.bin2, a55b93a), one lease: 8B
		# tg128 and pp512, 0.6B tg128 (issue 11: 8B Q4_K 2.5x bf16, pp512 >= 70% of bf16's); the
		# new build's profile; the Q4_K_M test file validated with it
		show $q bench --shape 8B --dtype q4_k -p 512 -n 128 --reps 2 --profile
		show .bin2/qwgpu bench --shape 8B --dtype q4_k -p 512 -n 128 --reps 2
		show $q bench --shape 0.6B --dtype q4_k -p 0 -n 128 --reps 3
		show .bin2/qwgpu bench --shape 0.6B --dtype q4_k -p 0 -n 128 --reps 3
		show $q validate --model testdata/gguf/small-tied-bf16-q4_k_m.gguf ;;
	q8par) # 0.6B Q8_0 against bf16 after Red1 (run 19 call 3b: 878.45 against 879.20 and
		# 878.43): three alternating pairs of processes, 5 reps each (issue 11)
		for i in 1 2 3; do
			show $q bench --shape 0.6B --dtype q8_0 -p 0 -n 128 --reps 5
			show $q bench --shape 0.6B -p 0 -n 128 --reps 5
		done ;;
	q8x) # 0.6B Q8_0 one token in the x-in-registers layout with fused norms (matvec_norm=8:
		# run 18's XReg sweep for Q8_0 had standalone norms, which alone lost 10.4%), everywhere and
		# only where it may pay: the LM head (matvec_minrows), o and down (matvec_mincols); then
		# bf16, the reference (issue 11: Q8_0 >= bf16; run 20 also ran the LM head's 144-byte
		# groups, matvec_wide=1, since removed)
		show $q bench --shape 0.6B --dtype q8_0 -p 0 -n 128 --reps 3 \
			--tune ';matvec_xreg=4,matvec_norm=8;matvec_xreg=2,matvec_norm=8;matvec_xreg=4,matvec_norm=8,matvec_minrows=100000;matvec_xreg=2,matvec_norm=8,matvec_minrows=100000;matvec_xreg=8,matvec_norm=8,matvec_minrows=100000;matvec_xreg=4,matvec_norm=8,matvec_mincols=2048'
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 ;;
	q4norm) # 8B Q4_K with rmsnorm's weights loaded before its reduction (this build) against the
		# build before it (.bin2); in the same process rmsnorm with 128, 512 and 1,024 threads and
		# XReg's loads two rows at a time; then 8B bf16, the ratio's reference (issue 11)
		show $q bench --shape 8B --dtype q4_k -p 0 -n 128 --reps 3 \
			--tune ';rmsnorm_wg=128;rmsnorm_wg=512;rmsnorm_wg=1024;matvec_xg=2'
		show .bin2/qwgpu bench --shape 8B --dtype q4_k -p 0 -n 128 --reps 3
		show $q bench --shape 8B -p 0 -n 128 --reps 3 ;;
	attnshort) # decode attention at tg128's short contexts (keys <= 128: one tile of 128 rows,
		# so 8 workgroups a layer at 0.6B and 8B, and no combine): tiles of 64, 32 and 16 rows
		# (more workgroups, and the combine once keys pass a tile) and 8 or 2 lanes a key row
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 \
			--tune ';chunk=64;chunk=32;chunk=16;attn_lanes=8;attn_lanes=2;chunk=32,attn_lanes=8'
		show $q bench --shape 8B -p 0 -n 128 --reps 2 --tune ';chunk=64;chunk=32' ;;
	bfsweep) # the bf16 one-token matvec's lanes and rows without x staged (its layouts were
		# tuned with staging, run 16; staging removed after run 20), 0.6B and 8B
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 \
			--tune ';matvec_tpr=16;matvec_tpr=64;matvec_tpr=128;matvec_maxr=4;matvec_rows=1;matvec_wg=128'
		show $q bench --shape 8B -p 0 -n 128 --reps 2 \
			--tune ';matvec_tpr=16;matvec_tpr=64;matvec_maxr=4;matvec_rows=1;matvec_wg=128' ;;
	bf8b) # 8B bf16 alone: the reference for q4k's ratio in the same lease
		show $q bench --shape 8B -p 0 -n 128 --reps 2 ;;
	check) # validate on this build: the golden models against transformers, and the quantized
		# test files GPU against the CPU reference, Q8_0 also with every value scaled
		for g in testdata/golden/*/; do
			show $q validate --model "$g" --golden "$g/golden.safetensors"
		done
		for t in '' matvec_qsum=-1; do
			for f in testdata/gguf/small-tied-bf16-q4_k_m.gguf testdata/gguf/tiny-tied-f32-q8_0.gguf; do
				echo "QWGPU_TUNE=$t" >>"$out/$part.txt"
				QWGPU_TUNE=$t show $q validate --model $f
			done
		done ;;
	q8) # 0.6B Q8_0 against bf16 in one call (issue 11: Q8_0 tg128 >= bf16's), Q8_0 with its
		# blocks' d applied to sums (the default since run 15) and to every value
		show $q bench --shape 0.6B --dtype q8_0 -p 512 -n 128 --reps 3 --tune ';matvec_qsum=-1'
		show $q bench --shape 0.6B -p 512 -n 128 --reps 3 ;;
	bf16) # 8B and 4B bf16: one token with 32 lanes a row on matrices of >= 4,096 rows (the
		# default since run 16) against 64 everywhere; 8B is the reference for q4k's ratio
		show $q bench --shape 8B -p 0 -n 128 --reps 2 --tune ';matvec_tpr=64'
		show $q bench --shape 4B -p 0 -n 128 --reps 2 --tune ';matvec_tpr=64' ;;
	x16) # 16 sequences chained as tg128's one is (the bench's xN since run 16), against the
		# step-by-step host loop of the build in .bin2 when one is there (issue 12); then 8B
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --parallel 16
		if [ -x .bin2/qwgpu ]; then
			show .bin2/qwgpu bench --shape 0.6B -p 0 -n 128 --reps 3 --parallel 16
		fi
		show $q bench --shape 8B -p 0 -n 128 --reps 2 --parallel 16 ;;
	x16prof) # the matvec's own 16-row step, role by role, in the default layouts (run 16's
		# 16-row profile was the tiled matmul's: the last --tune setting; issue 12)
		show $q bench --shape 0.6B -p 0 -n 128 --reps 2 --parallel 16 --profile ;;
	q8prof) # where 0.6B Q8_0's one-token step loses to bf16's, role by role, one call (issue 11)
		show $q bench --shape 0.6B --dtype q8_0 -p 0 -n 128 --reps 3 --profile
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --profile ;;
	serve06) # the server's loop at 0.6B: 16 clients against one (issue 12)
		show $q bench --shape 0.6B -p 0 -n 128 --reps 2 --serve-clients 1,16 ;;
	serve8b) # 8B serving (issue 12: 16 streams >= 3x one)
		show $q bench --shape 8B -p 0 -n 128 --reps 2 --serve-clients 1,16 ;;
	gqa4) # decode attention at 4B (4 query heads a kv head) and 0.6B, depth 32K, with the query
		# reloaded a key unit (attn_qreg=-1; registers are the default since run 14)
		show $q bench --shape 0.6B -p 0 -n 128 --reps 2 -d 32768 --kv-dtype f16 --tune ';attn_qreg=-1'
		show $q bench --shape 4B -p 0 -n 128 --reps 2 -d 32768 --kv-dtype f16 --profile \
			--tune 'attn_qreg=-1;attn_lanes=8;' ;;
	sizes) # issue 13's other sizes
		for s in 1.7B 4B; do
			show $q bench --shape $s -p 512 -n 128 --reps 3 -d 32768 --kv-dtype f16
		done ;;
	*)
		echo "unknown part $part: want base, q8x, q4norm, attnshort, bfsweep, q4k, xreg, bf8b, check, q8, q8prof, bf16, x16, x16prof, serve06, serve8b, gqa4 or sizes" >&2
		exit 2 ;;
	esac
done
