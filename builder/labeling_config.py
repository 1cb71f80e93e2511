"""Label Studio's labeling config, generated from the label scheme (never written by hand).

The sentence is a `Text` object (never `HyperText`: article text is untrusted). The control names
are the project's (`builder.model`), so validation checks pulled annotations against the same
names. The config lives in the core, not in the adapter: its hash goes into the card and the
release manifest.
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape, quoteattr

from builder.model import CONTEXT_AFTER, CONTEXT_BEFORE, ENTITIES, SENTENCE, STANCE
from builder.project import Project

_STYLE = """
  .builder-context { color: #6b7280; font-size: 0.9em; font-style: italic; }
  .builder-title { color: #374151; }
  .builder-sentence { font-size: 1.25em; padding: 0.5em; border: 1px solid #d1d5db; border-radius: 4px; }
  .builder-target { background: #f3f4f6; padding: 0.4em 0.6em; border-radius: 4px; }
"""


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
  <Labels name="{ENTITIES}" toName="{SENTENCE}" showInline="true">
{labels}
  </Labels>
  <View className="builder-target">
    <Header value="Target: $target" size="6"/>
    <Header value={quoteattr(project.stance_question)} size="6"/>
  </View>
  <Choices name="{STANCE}" toName="{SENTENCE}" choice="single-radio" required="true" showInline="true">
{choices}
  </Choices>
</View>
"""


def config_hash(project: Project) -> str:
    """sha256 of the labeling config (in the card and the release manifest)."""
    return hashlib.sha256(labeling_config(project).encode("utf-8")).hexdigest()
