# issue 23, command 1 of 2: the demo's tokenizer from scratch (--stop-after tokenizer), with two reduce-overhead
# variants beside it on the demo's clips (each run is host-bound: the GPU has room; the demo's minutes are measured
# while sharing the host's 16 cores with them)
set -u; T0=$(date +%s); . .gpu/setup.sh 2>/dev/null
export PYTHONPATH=$PWD:$PYTHONPATH
nvidia-smi -L; W=/tmp/tok-demo; rm -rf /tmp/t23
nvidia-smi dmon -s u -d 5 > $OUT/dmon.txt 2>&1 & DMON=$!
python3 scripts/train_tokenizer_demo.py --work-dir $W --out $OUT --compile --minutes 7.5 --stop-psnr 0 --stop-after tokenizer > $OUT/demo1.log 2>&1 & DEMO=$!
while [ ! -f $W/clips/val/captions.jsonl ]; do sleep 2; done; sleep 3
echo "## [$(( $(date +%s) - T0 )) s] clips written"
B="--config recipes/train_tokenizer_demo.yaml --input $W/clips/train/captions.jsonl --val-input $W/clips/val/captions.jsonl --max-steps 100000 --eval-every 500 --save-every 1000000 --log-every 100 --no-progress --num-workers 3 --compile --compile-mode reduce-overhead"
LIM=$(( 500 - ($(date +%s) - T0) ))
timeout $LIM python3 scripts/train_tokenizer.py $B --output-dir /tmp/t23/B > $OUT/B.log 2>&1 & P="$!"
timeout $LIM python3 scripts/train_tokenizer.py $B --output-dir /tmp/t23/D --batch-size 32 --lr 4e-4 > $OUT/D.log 2>&1 & P="$P $!"
sleep 90; echo "## [$(( $(date +%s) - T0 )) s]"; tail -n 2 $OUT/B.log $OUT/D.log | cut -c1-300; grep -E "steps/s|step [0-9]+/" $OUT/demo1.log | tail -n 3 | cut -c1-300
wait $P; wait $DEMO; echo "demo rc=$?"; kill $DMON
for r in B D; do cp /tmp/t23/$r/train_log.jsonl $OUT/$r-train_log.jsonl 2>/dev/null; echo "== $r"; grep -E "psnr|rror|Traceback|arn" $OUT/$r.log | cut -c1-260 | tail -n 14; done
echo "== demo"; grep -vE "it/s|step/s\]|UserWarning|warnings.warn" $OUT/demo1.log | grep -E "psnr|steps/s|rror|Traceback|budget|stopped|#" | cut -c1-300 | tail -n 25
ls $W/tokenizer; echo "## [$(( $(date +%s) - T0 )) s] done"
