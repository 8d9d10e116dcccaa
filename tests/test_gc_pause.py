"""The process-wide pause of automatic garbage collection is counted across holders."""

from __future__ import annotations

import gc
import threading

from rostersync.sync.gc_pause import gc_paused


def test_collection_resumes_when_the_last_holder_leaves_even_from_another_thread():
    assert gc.isenabled()
    inner_entered, release_inner = threading.Event(), threading.Event()

    def other_holder():
        with gc_paused():
            inner_entered.set()
            release_inner.wait(10)

    with gc_paused():
        worker = threading.Thread(target=other_holder)
        worker.start()
        assert inner_entered.wait(10)
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread still holds the pause
    release_inner.set()
    worker.join(10)
    assert gc.isenabled()


def test_a_pause_leaves_collection_off_when_it_was_off_before():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_inside_still_resumes_collection():
    try:
        with gc_paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()
