//! Prompts asking a chat model to put the reports into friendly words.
//!
//! The numbers are always computed locally; the model only phrases them.
//! The prompt pins the length (2–3 sentences), the tone (encouraging) and
//! forbids inventing facts or quoting the engagement score, which is an
//! internal signal rather than something to tell a learner.

use serde::Serialize;

use super::{EngagementReport, ProgressReport};
use crate::ChatMessage;

/// The instructions for every summary.
const SYSTEM: &str = "You are the study coach of Tandem, a platform where people study \
together in online sessions. Write a 2-3 sentence summary of the learner's recent progress, \
addressed to them as \"you\". Be warm, specific and encouraging, and suggest one small next \
step. Use only facts present in the JSON you are given; do not invent numbers. Never mention \
scores, probabilities or risk levels. Plain text only: no markdown, no greeting, no sign-off.";

/// The data the model sees.
#[derive(Serialize)]
struct PromptData<'a> {
    progress: &'a ProgressReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    engagement: Option<&'a EngagementReport>,
}

/// A system + user prompt for a short encouraging summary of `progress`,
/// optionally informed by `engagement` (e.g. to nudge a user at risk more
/// warmly). Send it with [`crate::AiClient::chat`].
pub fn summary_prompt(
    progress: &ProgressReport,
    engagement: Option<&EngagementReport>,
) -> Vec<ChatMessage> {
    // Serializing these plain structs cannot fail; fall back to the
    // highlights rather than panic if that ever changes.
    let data = serde_json::to_string(&PromptData {
        progress,
        engagement,
    })
    .unwrap_or_else(|_| progress.highlights.join(" "));
    vec![
        ChatMessage::system(SYSTEM),
        ChatMessage::user(format!(
            "Here is my study activity report as JSON. Hours are hours of attended study \
             sessions; weeklyHours lists the last 8 weeks, oldest first.\n\n{data}\n\n\
             Write my summary."
        )),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::{activity, studied};
    use super::super::{engagement_prediction, progress_analysis};
    use super::*;
    use crate::Role;

    #[test]
    fn the_prompt_carries_the_report_as_json() {
        let activity = activity(vec![studied(1, 2.5), studied(2, 1.0)]);
        let progress = progress_analysis(&activity);
        let engagement = engagement_prediction(&activity);
        let messages = summary_prompt(&progress, Some(&engagement));
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].role, Role::System);
        assert!(messages[0].content.contains("2-3 sentence"));
        assert_eq!(messages[1].role, Role::User);
        assert!(
            messages[1].content.contains(r#""hoursLast7Days":3.5"#),
            "{}",
            messages[1].content
        );
        assert!(messages[1].content.contains(r#""risk":"low""#));

        let without = summary_prompt(&progress, None);
        assert!(!without[1].content.contains("engagement"));
    }
}
