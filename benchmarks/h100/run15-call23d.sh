# issue 23 (last device minutes of the session): the L2 recipe with reduce-overhead alone on the demo's clips, the
# same command as run 15a's variant B (which used L1) for comparison of the held-out PSNR curve
set -u; T0=$(date +%s); . .gpu/setup.sh 2>/dev/null
export PYTHONPATH=$PWD:$PYTHONPATH
nvidia-smi -L; W=/tmp/t23d; rm -rf $W
python3 - <<'PY'
import time; t=time.time()
from nemo_cosmos_tokenizer.megatron.demo import write_clip_set
write_clip_set("/tmp/t23d/clips/train", 2048, seed=0)
write_clip_set("/tmp/t23d/clips/val", 16, seed=4)
print("clips", round(time.time()-t, 1), "s")
PY
LIM=$(( ${BUDGET:-270} - ($(date +%s) - T0) ))
timeout $LIM python3 scripts/train_tokenizer.py --config recipes/train_tokenizer_demo.yaml --input $W/clips/train/captions.jsonl --val-input $W/clips/val/captions.jsonl --max-steps 100000 --eval-every 500 --save-every 1000000 --log-every 100 --no-progress --cache-mb 2048 --compile --compile-mode reduce-overhead --output-dir $W/B > $OUT/B-l2.log 2>&1
cp $W/B/train_log.jsonl $OUT/B-l2-train_log.jsonl; grep -E "psnr|rror|Traceback" $OUT/B-l2.log | cut -c1-240 | tail -n 12
echo "## [$(( $(date +%s) - T0 )) s] done"
