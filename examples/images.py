"""Images and files in messages: agent.run(..., images=[...], files=[...]), parts as a step's
content, and workflow.run(..., images=[...]) (Agno's media of a run).

The image is a real 2x2 PNG made here, so the example needs no file and no network. The
agent gets the text and the parts in one user message (OpenAI: ``image_url`` and ``file``
parts; Anthropic: ``image`` and ``document`` blocks). In the workflow, the first step's
content is a list of parts, which the agent step sends as they are; the stored run refers
to the image by its SHA-256 and keeps its bytes once. ``workflow.run(x, images=[...])``
gives every step the image (``step_input.images``); the agent step sends it after its message.
"""

import hashlib
import os
import struct
import tempfile
import zlib
from pathlib import Path

from demo_models import announce, demo_model

from plait import Agent, FilePart, ImagePart, Step, StepInput, TextPart, Workflow


def tiny_png() -> bytes:
    """A 2x2 PNG: red, green, blue and white pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"\x00\xff\x00\x00\x00\xff\x00" + b"\x00\x00\x00\xff\xff\xff\xff"
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = tiny_png()

describer = Agent(name="Describer", model=demo_model(), instructions="Describe the picture and the notes.")


def attach(step_input: StepInput) -> list[object]:
    """The content of this step: the request and the image, as parts."""
    return [TextPart(f"Describe {step_input.input}."), ImagePart(data=PNG)]


if __name__ == "__main__":
    announce()
    with tempfile.TemporaryDirectory() as folder:
        notes = Path(folder) / "notes.txt"
        notes.write_text("Four pixels: red, green, blue, white.\n", encoding="utf-8")
        result = describer.run("Describe this picture of four pixels", images=[PNG], files=[notes])
        print(result.content)
        sent = next(m for m in reversed(result.messages) if m.role == "user")
        print("the user message held:", ", ".join(part.kind for part in sent.parts))
        storage = os.environ.get("PLAIT_STORAGE") or f"sqlite:///{Path(folder) / 'runs.db'}"
        workflow = Workflow(
            name="Look",
            steps=[Step(name="attach", executor=attach), Step(name="describe", agent=describer)],
            storage=storage,
        )
        output = workflow.run("the four pixels")
        print("status:", output.status)
        image = next(p for p in output.step_outputs[0].content if isinstance(p, ImagePart))
        print("stored image sha256:", hashlib.sha256(image.data or b"").hexdigest()[:16])
        print("a file part:", FilePart(path=notes), FilePart(path=notes).filename)
        given = Workflow(name="Given", steps=[Step(name="describe", agent=describer)], storage=storage)
        output = given.run("Describe the picture the run was given.", images=[PNG])
        print("a run's images reach its agent step:", "Attached: image (image/png" in str(output.content))
