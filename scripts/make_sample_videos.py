#!/usr/bin/env python3
"""Write the synthetic demo inputs: a few small mp4 clips, an image, captions.jsonl and a sentencepiece model
trained on the captions (no download).

example:
  python scripts/make_sample_videos.py demo-inputs
  python scripts/build_video_token_dataset.py --input demo-inputs/captions.jsonl \\
      --text-tokenizer demo-inputs/text_tokenizer.model --output-prefix demo/tokens --resolution 96 128
"""

import argparse
import sys
from pathlib import Path

try:
    import nemo_cosmos_tokenizer  # noqa: F401
except ImportError:  # a source checkout that was not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_tokenizer.data.samples import make_sample_inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="folder to write into (created)")
    inputs = make_sample_inputs(parser.parse_args().out_dir)
    print(f"manifest: {inputs.manifest}\ntext tokenizer: {inputs.text_tokenizer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
