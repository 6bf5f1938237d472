"""Iterative label mapping for V2S (``--map-type iterative``): the many-to-one mapping follows the program.

ILM (Chen et al., "Understanding and Improving Visual Prompting: A Label-Mapping Perspective", CVPR 2023) gives
each target class, before every epoch, the source labels the current prompt makes the frozen model predict most
for that class's training data, instead of a mapping drawn once.

In:  the fit split (series (N, L) float32, labels (N,) in 0..C-1) and a V2S model whose ``label_mapping`` layer is
     iterative (``ts_model.LabelMapping(iterative=True)``), K programs.
Each epoch, before its first step: every program's source probabilities (N, 36) on the fit split (inference mode,
     its current delta) -> ``ts_model.frequency_mapping`` (a greedy one-to-one assignment over the argmax votes,
     the same k labels per class as before) -> the layer's new mapping. The mapping is a weight of the model, so
     checkpoints and ``--resume`` carry it, and the best epoch's weights are read through the mapping they were
     validated with.
Out: ``mappings.json`` in the run folder, the mapping of every epoch (``{"epochs": [{"epoch", "mapping",
     "changes"}]}``, written atomically each epoch; a resumed run keeps the epochs before it), and ``map_changes``
     in each epoch's logs (history.csv): how many source labels changed owner, summed over the programs.
"""

import os

import numpy as np


def owner_changes(old, new, num_source):
    """How many source labels belong to another class (or to none) in mapping ``new`` than in ``old``, both
    (K, C, k)."""
    def owners(mapping):
        table = np.full((len(mapping), num_source), -1)
        for k, program in enumerate(mapping):
            for c, labels in enumerate(program):
                table[k, labels] = c
        return table

    return int(np.sum(owners(old) != owners(new)))


class IterativeMapping:
    """The epoch callback that re-assigns an iterative label mapping (see the module docstring)."""

    def __init__(self, x, y, num_classes, record_path, batch_size=256):
        self.x, self.y = np.asarray(x, np.float32), np.asarray(y)
        self.num_classes, self.record_path, self.batch_size = num_classes, record_path, batch_size
        self.model, self.probabilities, self.changes = None, None, 0

    def set_model(self, model):
        from ts_model import source_pass

        self.model = model
        self.probabilities = source_pass(model, probabilities=True)  # (K, N, 36), traced once for the run

    def _record(self):
        if os.path.isfile(self.record_path):
            from utils import read_json

            return read_json(self.record_path)["epochs"]
        return []

    def on_epoch_begin(self, epoch):
        from ts_model import NUM_SOURCE_CLASSES, frequency_mapping
        from utils import write_json

        layer = self.model.get_layer("label_mapping")
        old = np.asarray(layer.current_mapping())
        stacked_old = old[None] if layer.programs == 1 else old
        k = stacked_old.shape[-1]
        probs = self.probabilities(self.x, self.batch_size)
        new = np.stack([frequency_mapping(p, self.y, self.num_classes, k) for p in probs])
        self.changes = owner_changes(stacked_old, new, NUM_SOURCE_CLASSES)
        layer.assign(new[0] if layer.programs == 1 else new)
        record = [entry for entry in self._record() if entry["epoch"] < epoch]
        record.append({"epoch": epoch, "mapping": layer.current_mapping(), "changes": self.changes})
        write_json(self.record_path, {"epochs": record})

    def on_epoch_end(self, epoch, logs):
        logs["map_changes"] = float(self.changes)
