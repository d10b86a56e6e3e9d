"""``scripts/build_video_token_dataset.py`` slowed down for ``test_ctrl_c_keeps_chunks_and_the_same_command_resumes``:
every document written sleeps ``NCT_TEST_DOCUMENT_SECONDS``, so the test can send SIGINT mid-build."""

import os
import sys
import time

from nemo_cosmos_tokenizer.cli.build_dataset import main
from nemo_cosmos_tokenizer.data import writer

_add_document = writer.ShardWriter.add_document


def add_document(self, tokens):
    _add_document(self, tokens)
    time.sleep(float(os.environ["NCT_TEST_DOCUMENT_SECONDS"]))


writer.ShardWriter.add_document = add_document

if __name__ == "__main__":
    sys.exit(main())
