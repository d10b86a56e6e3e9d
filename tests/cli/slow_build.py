"""``scripts/build_video_token_dataset.py`` slowed down for ``test_ctrl_c_keeps_chunks_and_the_same_command_resumes``:
every document written sleeps ``NCT_TEST_DOCUMENT_SECONDS``, so the test can send SIGINT mid-build.

``NCT_TEST_SIGINT_IN_DEL_AT=k``: after the k-th document, SIGINT arrives while an object's ``__del__`` runs, where
Python swallows the KeyboardInterrupt (what happened once inside decord's VideoReader.__del__)."""

import os
import signal
import sys
import time

from nemo_cosmos_tokenizer.cli.build_dataset import main
from nemo_cosmos_tokenizer.data import writer

_add_document = writer.ShardWriter.add_document


_documents = 0


class _InterruptedInDel:
    def __del__(self):
        from nemo_cosmos_tokenizer.interrupts import interrupt_requested

        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not interrupt_requested() and time.monotonic() < deadline:
            pass  # the handler runs between these bytecodes, inside __del__


def add_document(self, tokens):
    global _documents
    _add_document(self, tokens)
    _documents += 1
    if _documents == int(os.environ.get("NCT_TEST_SIGINT_IN_DEL_AT", "0")):
        _InterruptedInDel()  # created and freed at once: __del__ runs here
    time.sleep(float(os.environ.get("NCT_TEST_DOCUMENT_SECONDS", "0")))


writer.ShardWriter.add_document = add_document

if __name__ == "__main__":
    sys.exit(main())
