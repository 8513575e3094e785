#!/usr/bin/env bash
# The H200 measurements docs/PERFORMANCE.md's "Next measurements" asks for,
# in parts that each fit one device call (10 minutes), e.g.
#
#   run(command: "bash docs/tools/h200.sh base batch", carry: [".gl", ".bin"])
#
# with .bin/qwgpu built here by `go build -buildvcs=true -ldflags "-s -w" -o
# .bin/qwgpu ./cmd/qwgpu` (so that the tables name the commit) and .gl as
# ../shared/docs/gpu-machine.md makes it. Each part appends its output to
# $OUT/<part>.txt. Parts run in the order given; several parts in one call
# share a lease, which is what a ratio between them needs. On 2026-12-02
# (H200) `depth sizes` ran 197 s, and a call takes 1-2 minutes more to
# start the machine; `base batch` ran 144 s and `q4k bf16` 402 s (run 13,
# the 8B Q4_K quantized at load takes 150 s of it), `depthtune` 234 s,
# `defaults rows` 413 s; `gqa4` is estimated at ~2 minutes, `tred` ~1.5 and `q8` ~1.
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
		# one-token steps stage x by default since run 13: against not staging, same lease;
		# and the fused qkv's 32 workgroups with more threads, or fewer lanes a row
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 \
			--tune ';matvec_xstage=-1;qkv_wg=512;qkv_wg=1024;qkv_tpr=16;qkv_wg=1024,qkv_tpr=16'
		for g in testdata/golden/*/; do
			show $q validate --model "$g" --golden "$g/golden.safetensors"
		done ;;
	batch) # the batched matvec with x staged in workgroup memory (issue 12)
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --parallel 8,16,32 \
			--tune ';matvec_xstage=1;matvec_xstage=1,matvec_wg=128;matvec_xstage=1,matvec_tpr=16;matvec_tpr=16' ;;
	depth) # decode attention at depth 32K (issue 13: 45% of depth 0)
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 -d 32768 --kv-dtype f16 --profile ;;
	depthtune) # the decode attention at depth 32K: batched loads, splits, lanes; and 8B's depth
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 -d 32768 --kv-dtype f16 \
			--tune ';attn_unroll=1;attn_splits=256;attn_splits=256,attn_unroll=1;attn_lanes=8'
		show $q bench --shape 8B -p 0 -n 128 --reps 3 -d 32768 --kv-dtype f16 ;;
	q4k) # 8B Q4_K and where its decode step's time goes (issue 11: 2.5x bf16)
		show $q bench --shape 8B --dtype q4_k -p 512 -n 128 --reps 3 --profile --tune ';matvec_tred=1' ;;
	tred) # the batched matvec reducing in one thread an output (matvec_tred), alone and with
		# the rows-a-thread layouts it may rescue (issue 12)
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --parallel 16,32 \
			--tune ';matvec_tred=1;matvec_tred=1,matvec_rows=4,matvec_tpr=128;matvec_tred=1,matvec_rows=2,matvec_tpr=64' ;;
	q8) # 0.6B Q8_0 against bf16 in one lease (issue 11: Q8_0 tg128 >= bf16's)
		show $q bench --shape 0.6B --dtype q8_0 -p 512 -n 128 --reps 3
		show $q bench --shape 0.6B -p 512 -n 128 --reps 3 ;;
	bf16) # 8B bf16: the reference for q4k's ratio, serving (issue 12: 16 streams >= 3x), and
		# the one-row step's profile against the copy and read bandwidths (issue 13: 85%)
		show $q bench --shape 8B -p 512 -n 128 --reps 3 --serve-clients 1,16
		show $q bench --shape 8B -p 0 -n 128 --reps 3 --profile --tune 'matvec_tpr=32;' ;;
	defaults) # run 13's defaults (batched attention loads, 2048 attention workgroups) against the
		# old loads at depth 0, x staged at one row; depth 32K with its profile; 1.7B/4B/8B at depth
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --tune ';attn_unroll=-1;matvec_xstage=1'
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 -d 32768 --kv-dtype f16 --profile \
			--tune ';attn_lanes=8;chunk=64,attn_splits=512'
		for s in 1.7B 4B 8B; do
			show $q bench --shape $s -p 0 -n 128 --reps 3 -d 32768 --kv-dtype f16
		done
		for g in testdata/golden/*/; do
			show $q validate --model "$g" --golden "$g/golden.safetensors"
		done ;;
	rows) # the batched matvec with several rows a thread at the default 8 rows a workgroup (issue 12)
		show $q bench --shape 0.6B -p 0 -n 128 --reps 3 --parallel 16 \
			--tune ';matvec_rows=4,matvec_tpr=128;matvec_rows=2,matvec_tpr=64;matvec_rows=4,matvec_tpr=64' ;;
	gqa4) # decode attention with the query in registers (attn_qreg) and more lanes a key row, at
		# 4B (4 query heads a kv head: run 13's 4B attention read its cache at a third of the
		# 0.6B's rate) and at 0.6B, depth 32K
		show $q bench --shape 0.6B -p 0 -n 128 --reps 2 -d 32768 --kv-dtype f16 --tune ';attn_qreg=1'
		show $q bench --shape 4B -p 0 -n 128 --reps 2 -d 32768 --kv-dtype f16 --profile \
			--tune ';attn_qreg=1;attn_qreg=1,attn_lanes=8' ;;
	sizes) # issue 13's other sizes
		for s in 1.7B 4B; do
			show $q bench --shape $s -p 512 -n 128 --reps 3 -d 32768 --kv-dtype f16
		done ;;
	*)
		echo "unknown part $part: want base, batch, depth, depthtune, q4k, bf16, sizes, defaults, rows, gqa4, tred or q8" >&2
		exit 2 ;;
	esac
done
