"""``scripts/build_video_token_dataset.py`` with a test hook: one rank stops half-way through a chunk.

Run under torchrun by ``test_killed_worker_then_resume``. The rank named by ``NCT_TEST_PAUSE_RANK`` writes the
first document of its second chunk into the temporary shard, writes its pid to ``NCT_TEST_PAUSE_MARKER`` and
sleeps until the test SIGKILLs it: a worker dying with a half-written shard and its first chunk complete.
"""

import os
import sys
import time
from pathlib import Path

from nemo_cosmos_tokenizer.cli.build_dataset import main
from nemo_cosmos_tokenizer.data import writer

if os.environ.get("RANK") == os.environ["NCT_TEST_PAUSE_RANK"]:
    _add_document = writer.ShardWriter.add_document
    _shards: set = set()

    def add_document(self, tokens):
        _add_document(self, tokens)
        _shards.add(self.prefix)
        if len(_shards) == 2:
            self._builder.data_file.flush()
            Path(os.environ["NCT_TEST_PAUSE_MARKER"]).write_text(str(os.getpid()))
            while True:
                time.sleep(1)

    writer.ShardWriter.add_document = add_document

if __name__ == "__main__":
    sys.exit(main())
