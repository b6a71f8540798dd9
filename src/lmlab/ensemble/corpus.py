"""Embedded sample data: a synthetic gadget-classification JSONL in the upstream's format.

The lab's upstream data (492 rows, not redistributable) pairs an instruction, an excerpt
from an industrial/PLC manual and an output ``gadget_type: <T>; location: <L>;
explanation: <E>`` over 8 classes. This module generates a stand-in deterministically from
a seed so that the Ensemble family runs offline: manual-style excerpts built from
per-class instruction descriptions, shared distractor sentences (so classes overlap the way
real manuals do), locations taken from the excerpt's section heading, short explanations,
and realistic noise: a fraction of labels swapped to a confusable class and a fraction of
gold labels written in a variant spelling ("Read-write gadgets").

As upstream, each instruction names the class it asks for (the label leak); the split step
strips it by default and the report gives a copy-from-instruction baseline.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from lmlab.ensemble.labels import CANONICAL, DISPLAY_NAMES, format_output

logger = logging.getLogger(__name__)

__all__ = ["SampleParams", "generate_gadget_rows", "CONFUSABLE"]


@dataclass(frozen=True)
class SampleParams:
    """Size and noise of the embedded sample (``ensemble.sample`` in params.yaml)."""

    n_rows: int = 400
    label_noise: float = 0.06
    variant_spelling: float = 0.05
    distractor_rate: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_rows < 2 * len(CANONICAL):
            raise ValueError(f"n_rows: must be >= {2 * len(CANONICAL)} (two rows per class), got {self.n_rows}")
        for name in ("label_noise", "variant_spelling", "distractor_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {getattr(self, name)}")


MANUALS = (
    "Series 7 Programmable Controller Instruction Reference",
    "LogiCore Ladder Logic Programming Manual",
    "FieldLink Protocol Gateway User Manual",
    "SafeGuard Safety PLC Configuration Guide",
    "MotionCore Servo Drive Programming Manual",
    "ProcessMaster DCS Function Block Reference",
    "PanelView HMI Runtime Reference",
    "RTU-400 Remote Terminal Unit Operator Manual",
)

# Per class: section headings, (instruction mnemonic, what it does) pairs, an explanation
# template and the attacker goal. The excerpt is written around the mnemonic and its effect.
CLASS_CONTENT: dict[str, dict[str, tuple]] = {
    "READ_WRITE": {
        "headings": ("Data Table Access", "Register Addressing", "Memory Map and Data Files", "Indirect Addressing"),
        "ops": (("MOV", "copies a source value into a destination register"),
                ("COP", "copies a block of words between data files"),
                ("FLL", "fills a data file with a constant"),
                ("GET", "reads a word from the shared data table"),
                ("PUT", "writes a word into any address of the data table"),
                ("BTD", "moves bits between two integer registers")),
        "goal": "tamper with controller memory",
    },
    "CONTROL_FLOW": {
        "headings": ("Program Flow Instructions", "Jumps and Labels", "Subroutine Return", "Conditional Execution"),
        "ops": (("JMP", "skips to the rung marked by a matching label"),
                ("LBL", "marks the target rung of a jump"),
                ("MCR", "disables all outputs inside a master control zone"),
                ("TND", "ends the current scan early"),
                ("AFI", "forces a rung false regardless of its inputs"),
                ("SBR", "branches execution when a status bit is set")),
        "goal": "redirect the program scan",
    },
    "COMMUNICATION_BRIDGE": {
        "headings": ("Message Instructions", "Protocol Gateway Mapping", "Network Routing", "Serial Port Configuration"),
        "ops": (("MSG", "sends a message to another node on the network"),
                ("GW-MAP", "forwards Modbus registers to the PROFINET side"),
                ("ROUTE", "relays packets between the serial and Ethernet ports"),
                ("PASS", "enables pass-through of DF1 frames to the backplane"),
                ("CIP-FWD", "forwards CIP requests to a remote chassis"),
                ("MB-POLL", "polls slave devices and copies their replies upstream")),
        "goal": "relay commands across networks",
    },
    "SECURITY_PROCESSING": {
        "headings": ("Access Levels and Passwords", "Key Switch Modes", "User Authentication", "Firmware Signature"),
        "ops": (("PWCHK", "compares the entered password with the stored hash"),
                ("KEYSW", "reports the position of the run/program key switch"),
                ("ACL", "grants write access to users of level 3 or higher"),
                ("SIGV", "verifies the firmware image signature before update"),
                ("LOGIN", "opens an engineering session after authentication"),
                ("LOCK", "locks the project against online edits")),
        "goal": "bypass authentication",
    },
    "TIMING_SYNCHRONIZATION": {
        "headings": ("Timer and Counter Instructions", "Watchdog Configuration", "Clock Synchronization", "Scan Time"),
        "ops": (("TON", "starts a delay when its rung goes true"),
                ("RTO", "accumulates time across power cycles"),
                ("WDT", "faults the processor when the scan exceeds the watchdog time"),
                ("SNTP", "synchronizes the real-time clock with a time server"),
                ("STI", "runs an interrupt routine at a fixed period"),
                ("CTU", "counts rising edges until the preset is reached")),
        "goal": "skew timing of interlocks",
    },
    "ARITHMETIC_COMPUTATION": {
        "headings": ("Math Instructions", "Scaling and Conversion", "Compute Expressions", "Checksum Functions"),
        "ops": (("ADD", "adds two operands and stores the sum"),
                ("CPT", "evaluates an arithmetic expression"),
                ("SCP", "scales a raw analog value to engineering units"),
                ("DIV", "divides the source by a constant and truncates"),
                ("CRC", "computes a checksum over a buffer"),
                ("SQR", "takes the square root of a register")),
        "goal": "compute values via overflow",
    },
    "COMPOSITION_CHAINING": {
        "headings": ("Function Block Nesting", "Add-On Instructions", "Routine Calls", "Sequential Function Charts"),
        "ops": (("JSR", "calls a subroutine and passes parameters to it"),
                ("AOI", "wraps several instructions into one reusable block"),
                ("FB-CALL", "invokes a function block from another function block"),
                ("SFC", "chains steps and transitions into a sequence"),
                ("RET", "returns values from a nested routine to its caller"),
                ("EVENT", "triggers a task that calls further tasks")),
        "goal": "chain primitives into an attack",
    },
    "IO_SIDE_EFFECT": {
        "headings": ("Discrete Output Modules", "Immediate I/O", "Analog Output Configuration", "Forcing I/O"),
        "ops": (("OTE", "energizes an output coil while its rung is true"),
                ("IOT", "updates the physical output module immediately"),
                ("OTL", "latches a relay output on"),
                ("FORCE", "forces an input or output point to a fixed state"),
                ("AOUT", "drives the analog output channel to a set point"),
                ("PWM", "pulses a digital output at a given duty cycle")),
        "goal": "drive physical actuators",
    },
}

# Labels that real annotators confuse (used for label noise).
CONFUSABLE: dict[str, tuple[str, ...]] = {
    "READ_WRITE": ("IO_SIDE_EFFECT", "ARITHMETIC_COMPUTATION"),
    "CONTROL_FLOW": ("COMPOSITION_CHAINING", "TIMING_SYNCHRONIZATION"),
    "COMMUNICATION_BRIDGE": ("IO_SIDE_EFFECT", "READ_WRITE"),
    "SECURITY_PROCESSING": ("CONTROL_FLOW",),
    "TIMING_SYNCHRONIZATION": ("CONTROL_FLOW",),
    "ARITHMETIC_COMPUTATION": ("READ_WRITE",),
    "COMPOSITION_CHAINING": ("CONTROL_FLOW",),
    "IO_SIDE_EFFECT": ("READ_WRITE", "COMMUNICATION_BRIDGE"),
}

VARIANT_SPELLINGS: dict[str, tuple[str, ...]] = {
    "READ_WRITE": ("Read-write gadget", "Read/Write gadgets"),
    "CONTROL_FLOW": ("Control flow gadget", "Control-Flow gadgets"),
    "COMMUNICATION_BRIDGE": ("Communication bridge gadget",),
    "SECURITY_PROCESSING": ("Security processing gadget",),
    "TIMING_SYNCHRONIZATION": ("Timing/Synchronisation gadget", "Timing gadget"),
    "ARITHMETIC_COMPUTATION": ("Arithmetic gadget",),
    "COMPOSITION_CHAINING": ("Composition / Chaining gadget",),
    "IO_SIDE_EFFECT": ("I/O & Side-Effect gadget", "IO side-effect gadget"),
}

INSTRUCTIONS = (
    "Identify weird machine {cls} gadgets in the following excerpt from the {manual}.",
    "Find {cls} gadgets in this excerpt of the {manual} and explain how they could be abused.",
    "Analyze the excerpt from the {manual} for weird machine {cls} gadgets.",
    "List any {cls} gadget described in the following {manual} excerpt.",
)

SENTENCES = (
    "The {op} instruction {effect}.",
    "When the rung condition is true, {op} {effect}.",
    "Use {op} with care: it {effect} without further checks.",
    "{op} {effect}; operands may be given as direct or indirect addresses.",
)

DISTRACTORS = (
    "The instruction executes once per scan while the rung is enabled.",
    "Status bits are updated at the end of the instruction.",
    "Addresses may refer to integer, float or bit files.",
    "See the table below for valid operand types.",
    "A major fault is logged if an operand is out of range.",
    "The instruction is available in both ladder and structured text.",
    "Parameters can be changed online in program mode.",
)


def _excerpt(rng: random.Random, label: str, op: str, effect: str, heading: str, distractor_rate: float) -> str:
    sentences = [rng.choice(SENTENCES).format(op=op, effect=effect)]
    if rng.random() < distractor_rate:
        sentences.append(rng.choice(DISTRACTORS))
    if rng.random() < distractor_rate / 2:
        # A mention of another class's instruction, as real manual sections cross-reference each other.
        other = rng.choice([c for c in CANONICAL if c != label])
        o_op, o_effect = rng.choice(CLASS_CONTENT[other]["ops"])
        sentences.append(f"See also {o_op}, which {o_effect}.")
    return f"{heading}\n" + " ".join(sentences)


def generate_gadget_rows(params: SampleParams) -> list[dict[str, str]]:
    """Rows with ``manual_name``, ``instruction``, ``input``, ``output`` (classes balanced, order shuffled)."""
    rng = random.Random(f"gadgets:{params.seed}")
    rows: list[dict[str, str]] = []
    n_noisy = 0
    for i in range(params.n_rows):
        label = CANONICAL[i % len(CANONICAL)]
        content = CLASS_CONTENT[label]
        manual = rng.choice(MANUALS)
        heading = rng.choice(content["headings"])
        op, effect = rng.choice(content["ops"])
        chapter, section = rng.randint(2, 12), rng.randint(1, 9)
        location = f"Section {chapter}.{section} {heading}"
        excerpt = _excerpt(rng, label, op, effect, f"{chapter}.{section} {heading}", params.distractor_rate)
        gold = label
        if rng.random() < params.label_noise:
            gold = rng.choice(CONFUSABLE[label])
            n_noisy += 1
        explanation = f"{op} {effect}; an attacker could {CLASS_CONTENT[gold]['goal']}."
        surface = rng.choice(VARIANT_SPELLINGS[gold]) if rng.random() < params.variant_spelling else None
        instruction = rng.choice(INSTRUCTIONS).format(cls=DISPLAY_NAMES[label].upper(), manual=manual)
        rows.append({
            "manual_name": manual,
            "instruction": instruction,
            "input": excerpt,
            "output": format_output(gold, location, explanation, surface),
        })
    rng.shuffle(rows)
    logger.info("generated %d gadget rows (%d with a swapped label)", len(rows), n_noisy)
    return rows
