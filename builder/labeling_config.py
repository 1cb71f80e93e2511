"""Label Studio's labeling config, generated from the label scheme (never written by hand).

The sentence is a `Text` object (never `HyperText`: article text is untrusted). The control names
are the project's (`builder.model`), so validation checks pulled annotations against the same
names. The config lives in the core, not in the adapter: its hash goes into the card and the
release manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

from builder.model import CONTEXT_AFTER, CONTEXT_BEFORE, ENTITIES, SENTENCE, STANCE
from builder.project import Project

_STYLE = """
  .builder-context { color: #6b7280; font-size: 0.9em; font-style: italic; }
  .builder-title { color: #374151; }
  .builder-sentence { font-size: 1.25em; padding: 0.5em; border: 1px solid #d1d5db; border-radius: 4px; }
  .builder-target { background: #f3f4f6; padding: 0.4em 0.6em; border-radius: 4px; }
"""


# Label Studio 1.23's own keys (its keymap's annotation:submit, annotation:skip and annotation:undo), the same in
# every project: (key, key on a Mac, what it does).
LABEL_STUDIO_KEYS = (
    ("Ctrl+Enter", "Cmd+Enter", "submit the sentence and open the next one"),
    ("Ctrl+Space", "Alt+Enter", "skip the sentence (it is not labelled)"),
    ("Ctrl+Z", "Cmd+Z", "undo the last change"),
)


def stance_required_message(project: Project) -> str:
    """What Label Studio shows an annotator who submits without a stance (the choice is required)."""
    keys = ", ".join(f"{label.value} ({label.hotkey})" for label in project.stance_labels)
    return f"Choose a stance before submitting: {keys}."


def keyboard_shortcuts(stance: Iterable[tuple[str, str]], entities: Iterable[tuple[str, str]]) -> str:
    """The guidelines' table of every key an annotator needs: the scheme's label keys ((label, key) pairs of
    its stance and entity labels), then Label Studio's own. `builder init` writes it into the guidelines; the
    bundled guidelines hold it as their scheme generates it (tested)."""
    rows = [f"| `{key}` | stance **{value}** |" for value, key in stance]
    rows += [f"| `{key}` | entity **{value}**: press it, then drag over the words |" for value, key in entities]
    rows += [f"| `{key}` (Mac: `{mac}`) | {what} |" for key, mac, what in LABEL_STUDIO_KEYS]
    return "\n".join(["| key | what it does |", "|---|---|", *rows])


def project_keyboard_shortcuts(project: Project) -> str:
    """`keyboard_shortcuts` of `project`'s scheme."""
    return keyboard_shortcuts(
        [(label.value, label.hotkey) for label in project.stance_labels],
        [(label.value, label.hotkey) for label in project.entity_labels],
    )


def labeling_config(project: Project) -> str:
    """The XML labeling config for `project`'s scheme."""
    labels = "\n".join(
        f"    <Label value={quoteattr(label.value)} background={quoteattr(label.color)} "
        f"hotkey={quoteattr(label.hotkey)}"
        + (f" hint={quoteattr(label.description)}" if label.description else "")
        + "/>"
        for label in project.entity_labels
    )
    choices = "\n".join(
        f"    <Choice value={quoteattr(label.value)} hotkey={quoteattr(label.hotkey)}"
        + (f" hint={quoteattr(label.description)}" if label.description else "")
        + "/>"
        for label in project.stance_labels
    )
    # Each half of the scheme is a block of controls; a stance-only or entities-only scheme shows only its own.
    entities_block = f"""  <Labels name="{ENTITIES}" toName="{SENTENCE}" showInline="true">
{labels}
  </Labels>
"""
    stance_block = f"""  <View className="builder-target">
    <Header value="Target: $target" size="6"/>
    <Header value={quoteattr(project.stance_question)} size="6"/>
  </View>
  <Choices name="{STANCE}" toName="{SENTENCE}" choice="single-radio" required="true"
    requiredMessage={quoteattr(stance_required_message(project))} showInline="true">
{choices}
  </Choices>
"""
    return f"""<View>
  <Style>{escape(_STYLE)}</Style>
  <View className="builder-title">
    <Header value="$article_title" size="5"/>
  </View>
  <View className="builder-context">
    <Text name="{CONTEXT_BEFORE}" value="$prev_text" granularity="word" selectionEnabled="false"/>
  </View>
  <View className="builder-sentence">
    <Text name="{SENTENCE}" value="$text" granularity="symbol"/>
  </View>
  <View className="builder-context">
    <Text name="{CONTEXT_AFTER}" value="$next_text" granularity="word" selectionEnabled="false"/>
  </View>
{entities_block if project.has_entities else ""}{stance_block if project.has_stance else ""}</View>
"""


def config_hash(project: Project) -> str:
    """sha256 of the labeling config (in the card and the release manifest)."""
    return hashlib.sha256(labeling_config(project).encode("utf-8")).hexdigest()
