// The AI study coach: chat, progress analysis, engagement prediction.
import { api } from '../api.js';
import { waitForJob } from '../jobs.js';
import { el, mount, onLeave, onSubmit } from '../shell.js';

function addBubble(log, who, text, className = '') {
  const li = el('li', `bubble ${who} ${className}`.trim(), text);
  log.append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

/** The AI study coach: chat, progress analysis, engagement prediction. */
export async function renderCoach() {
  const root = mount('tpl-coach');
  const form = root.querySelector('#coach-form');
  const log = root.querySelector('#coach-log');
  const aborter = new AbortController();
  onLeave(() => aborter.abort());
  const turns = [];

  onSubmit(form, async (data) => {
    const content = String(data.get('message') || '').trim();
    if (!content) return;
    turns.push({ role: 'user', content });
    addBubble(log, 'user', content);
    form.reset();
    const pending = addBubble(log, 'coach', 'Thinking…', 'pending');
    try {
      const { jobId } = await api('POST', '/api/ai/chat', { messages: turns.slice(-20) });
      const status = await waitForJob(jobId, { signal: aborter.signal });
      if (status.state === 'failed') throw new Error(status.error);
      pending.textContent = status.result.reply;
      pending.classList.remove('pending');
      turns.push({ role: 'assistant', content: status.result.reply });
    } catch (e) {
      turns.pop();
      pending.textContent = `The coach is unavailable: ${e.message}`;
      pending.classList.replace('pending', 'failed');
    }
  });

  for (const [selector, task] of [['#analyse', 'progress-analysis'], ['#predict', 'engagement-prediction']]) {
    const button = root.querySelector(selector);
    button.addEventListener('click', async () => {
      const target = root.querySelector(`#${task}`);
      button.disabled = true;
      target.textContent = 'Working it out…';
      try {
        const { jobId } = await api('POST', `/api/ai/${task}`, {});
        const status = await waitForJob(jobId, { signal: aborter.signal });
        if (status.state === 'failed') throw new Error(status.error);
        const { report, summary } = status.result;
        const lines = report.highlights || report.topFactors || [];
        const headline = report.risk
          ? `Chance of staying active next week: ${Math.round(report.score * 100)}% (${report.risk} risk).`
          : `${report.totalHours} h studied in all, ${report.hoursLast7Days} h in the last 7 days; trend: ${report.trend}.`;
        target.replaceChildren(el('p', '', headline), ...lines.map((l) => el('p', 'muted', l)));
        if (summary) target.append(el('p', 'summary', summary));
      } catch (e) {
        target.textContent = e.message;
      } finally {
        button.disabled = false;
      }
    });
  }
}
