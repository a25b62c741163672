// The operator's console: a list of transactions and a page per transaction, kept current by
// the coordinator's server-sent events (GET /admin/stream), which only say "gid X is now Y";
// the page then refetches what it shows from the admin API. Routes live in the hash:
// #/?status=…&mode=…&participant=…&attention=true&from=<ISO>&to=<ISO> for the list (created in
// [from, to)), #/tx/<gid> for one transaction, #/locks for the row locks AT transactions hold,
// #/participants for the participants and their gates (breaker, calls in flight, queue).
import {
  filterQuery,
  getStats,
  getTransaction,
  listHeldLocks,
  listParticipants,
  listTransactions,
  openChangeStream,
  retryTransaction,
  rollbackTransaction,
} from './api.js';
import { describeJson, formatDateTime, formatDuration, formatTime, h, replaceChildren, zoneName } from './dom.js';
import { phaseAttempts, repeatRuns } from './history.js';

const STATUSES = ['active', 'committing', 'committed', 'rolling_back', 'rolled_back'];
const MODES = ['tcc', '2pc', 'saga', 'msg'];
/** Rows per page unless the hash says otherwise (#/?limit=…, up to the API's 200). */
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 200;
/** Past this many changed transactions at once, reloading the first page is cheaper than one fetch each. */
const BURST_RELOAD_THRESHOLD = 20;
/** Least time between two refreshes of the counts and the attention panel while changes stream in. */
const SIDE_DATA_EVERY_MS = 2000;
/**
 * How often the locks view refetches: a branch added to an interactive transaction takes locks
 * without changing any status, so no event on the stream says so.
 */
const LOCKS_REFRESH_MS = 5000;
/** How often the participants view refetches: calls in flight and queues move without any event on the stream. */
const PARTICIPANTS_REFRESH_MS = 2000;

const statusLabel = (status) => status.replace('_', ' ');

const view = document.getElementById('view');
const liveIndicator = document.getElementById('live');

// ---------------------------------------------------------------------------------- small parts

function statusBadge(status, extraClass = '') {
  return h('span', { class: `badge status-${status} ${extraClass}`.trim(), dataset: { status } }, statusLabel(status));
}

function attentionBadge() {
  return h('span', { class: 'badge attention', title: 'Phase 2 keeps failing or was refused: look at the branches' }, 'needs attention');
}

function txLink(gid) {
  return h('a', { class: 'gid', href: `#/tx/${encodeURIComponent(gid)}` }, gid);
}

let toastTimer = null;
function toast(message, kind = 'info') {
  const element = document.getElementById('toast');
  element.textContent = message;
  element.dataset.kind = kind;
  element.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (element.hidden = true), 6000);
}

/** A modal confirmation; resolves true only when the operator presses the confirm button. */
function confirmAction({ title, text, confirmLabel }) {
  const dialog = document.getElementById('confirm-dialog');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  ok.textContent = confirmLabel;
  return new Promise((resolve) => {
    const finish = (answer) => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onOk = () => finish(true);
    const onCancel = () => finish(false);
    const onClose = () => finish(false); // Escape key
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    cancel.focus();
  });
}

function errorPanel(error) {
  return h('div', { class: 'panel error-panel' }, h('strong', {}, 'Could not load: '), error.message ?? String(error));
}

// ---------------------------------------------------------------------------------- routing

function parseRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const tx = /^\/tx\/(.+)$/.exec(hash);
  if (tx) return { name: 'tx', gid: decodeURIComponent(tx[1]) };
  if (/^\/locks\/?$/.test(hash)) return { name: 'locks' };
  if (/^\/participants\/?$/.test(hash)) return { name: 'participants' };
  const query = new URLSearchParams(hash.split('?')[1] ?? '');
  return {
    name: 'list',
    filters: {
      status: STATUSES.includes(query.get('status')) ? query.get('status') : '',
      mode: MODES.includes(query.get('mode')) ? query.get('mode') : '',
      participant: query.get('participant') ?? '',
      attention: query.get('attention') === 'true',
      from: isoOrEmpty(query.get('from')),
      to: isoOrEmpty(query.get('to')),
      limit: pageSize(query.get('limit')),
    },
  };
}

/** An instant the admin API takes (ISO-8601), or '' for none. */
function isoOrEmpty(text) {
  const time = text ? Date.parse(text) : NaN;
  return Number.isNaN(time) ? '' : new Date(time).toISOString();
}

/** ISO instant -> the local "YYYY-MM-DDTHH:MM" a datetime-local input shows, and back. */
function toLocalInput(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}
const fromLocalInput = (value) => (value ? new Date(value).toISOString() : '');

function pageSize(text) {
  const size = Number(text);
  return Number.isInteger(size) && size >= 1 && size <= MAX_PAGE_SIZE ? size : DEFAULT_PAGE_SIZE;
}

function listHash(filters) {
  const query = filterQuery(filters);
  if (filters.limit && filters.limit !== DEFAULT_PAGE_SIZE) query.set('limit', String(filters.limit));
  const text = query.toString();
  return text ? `#/?${text}` : '#/';
}

/** The page on screen; each knows how to reload itself and how to take a change event. */
let current = null;

function route() {
  document.getElementById('toast').hidden = true;
  const next = parseRoute();
  current =
    next.name === 'tx'
      ? new TransactionPage(next.gid)
      : next.name === 'locks'
        ? new LocksPage()
        : next.name === 'participants'
          ? new ParticipantsPage()
          : new ListPage(next.filters);
  for (const link of document.querySelectorAll('.nav a')) {
    if (link.dataset.view === next.name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  current.mount();
}

// ---------------------------------------------------------------------------------- the list

class ListPage {
  constructor(filters) {
    this.filters = filters;
    /** gid -> view, for the rows on screen, newest first. */
    this.rows = new Map();
    this.nextCursor = null;
    /** Drops answers to requests that a newer reload has overtaken. */
    this.generation = 0;
    /** The reloads and changes not yet applied, run one after the other (inTurn). */
    this.turns = Promise.resolve();
    /** Which counts request was sent last, and whose answer is on screen. */
    this.sideDataAsked = 0;
    this.sideDataShown = 0;
  }

  /**
   * Runs the reloads of the rows and the changes to them one after the other, in the order
   * they came. Side by side, a page of rows read before a change could arrive after it and put
   * the changed row back as it was (or take it out), and no later event would set it right:
   * the live update would be lost, more often the slower the server.
   */
  inTurn(task) {
    const turn = this.turns.then(task);
    this.turns = turn.catch(() => {});
    return turn;
  }

  mount() {
    this.statsSection = h('section', { class: 'stats', 'aria-label': 'Counts' });
    this.attentionSection = h('section', { class: 'panel attention-panel', hidden: true, 'data-testid': 'attention-panel' });
    this.tbody = h('tbody');
    this.summary = h('span', { class: 'muted', 'data-testid': 'list-summary' });
    this.loadMoreButton = h('button', { type: 'button', class: 'button', hidden: true, onclick: () => this.loadMore() }, 'Load more');
    replaceChildren(
      view,
      this.statsSection,
      this.attentionSection,
      h(
        'section',
        { class: 'panel' },
        this.filterBar(),
        h(
          'table',
          // data-state/data-query tell a reader (and the browser test) which filters the rows answer.
          { class: 'tx-table', 'data-testid': 'tx-table', 'data-state': 'loading', 'data-query': listHash(this.filters).replace(/^#\/\??/, '') },
          h('thead', {}, h('tr', {}, h('th', {}, 'Transaction'), h('th', {}, 'Mode'), h('th', {}, 'Status'), h('th', {}, 'Branches'), h('th', {}, 'Created'), h('th', {}, 'Updated'))),
          this.tbody,
        ),
        h('div', { class: 'list-footer' }, this.summary, this.loadMoreButton),
      ),
    );
    return this.reload();
  }

  filterBar() {
    const status = h(
      'select',
      { name: 'status', 'aria-label': 'Status', onchange: (e) => this.applyFilters({ status: e.target.value }) },
      h('option', { value: '' }, 'Any status'),
      STATUSES.map((s) => h('option', { value: s, selected: s === this.filters.status }, statusLabel(s))),
    );
    const mode = h(
      'select',
      { name: 'mode', 'aria-label': 'Mode', onchange: (e) => this.applyFilters({ mode: e.target.value }) },
      h('option', { value: '' }, 'Any mode'),
      MODES.map((m) => h('option', { value: m, selected: m === this.filters.mode }, m)),
    );
    const participant = h('input', {
      name: 'participant',
      type: 'search',
      placeholder: 'Participant',
      'aria-label': 'Participant',
      value: this.filters.participant,
      onchange: (e) => this.applyFilters({ participant: e.target.value.trim() }),
    });
    const attention = h('input', {
      name: 'attention',
      type: 'checkbox',
      checked: this.filters.attention,
      onchange: (e) => this.applyFilters({ attention: e.target.checked }),
    });
    // Created from / before, in the operator's local time (minute steps; the hash takes any instant),
    // its zone named beside them as every time on the page carries its own.
    const from = h('input', {
      name: 'from',
      type: 'datetime-local',
      'aria-label': 'Created from',
      title: 'Created from',
      value: toLocalInput(this.filters.from),
      onchange: (e) => this.applyFilters({ from: fromLocalInput(e.target.value) }),
    });
    const to = h('input', {
      name: 'to',
      type: 'datetime-local',
      'aria-label': 'Created before',
      title: 'Created before',
      value: toLocalInput(this.filters.to),
      onchange: (e) => this.applyFilters({ to: fromLocalInput(e.target.value) }),
    });
    const f = this.filters;
    const active = f.status || f.mode || f.participant || f.attention || f.from || f.to;
    return h(
      'form',
      { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
      status,
      mode,
      participant,
      h('label', { class: 'range' }, 'Created', from, '–', to, h('span', { class: 'muted zone', 'data-testid': 'range-zone' }, zoneName())),
      h('label', { class: 'checkbox' }, attention, 'Needs attention only'),
      active ? h('a', { class: 'clear-filters', href: '#/' }, 'Clear filters') : null,
    );
  }

  applyFilters(change) {
    location.hash = listHash({ ...this.filters, ...change });
  }

  /** The first page, the counts and the attention panel, from scratch. */
  async reload() {
    await Promise.all([this.inTurn(() => this.loadFirstPage(++this.generation)), this.refreshSideData()]);
  }

  async loadFirstPage(generation) {
    try {
      const page = await listTransactions(this.filters, null, this.filters.limit);
      if (generation !== this.generation || current !== this) return;
      this.rows = new Map(page.items.map((tx) => [tx.gid, tx]));
      this.nextCursor = page.nextCursor;
      this.renderRows();
    } catch (error) {
      replaceChildren(this.tbody, h('tr', {}, h('td', { colspan: 6 }, errorPanel(error))));
    }
  }

  async loadMore() {
    if (!this.nextCursor) return;
    const generation = this.generation;
    this.loadMoreButton.disabled = true;
    try {
      const page = await listTransactions(this.filters, this.nextCursor, this.filters.limit);
      if (generation !== this.generation || current !== this) return;
      for (const tx of page.items) if (!this.rows.has(tx.gid)) this.rows.set(tx.gid, tx);
      this.nextCursor = page.nextCursor;
      this.renderRows();
    } catch (error) {
      toast(`Could not load more: ${error.message}`, 'error');
    } finally {
      this.loadMoreButton.disabled = false;
    }
  }

  async refreshSideData() {
    const asked = ++this.sideDataAsked;
    const [stats, attention] = await Promise.allSettled([getStats(), listTransactions({ attention: true }, null, 20)]);
    // An answer to an older request, overtaken by a newer one already shown, is older news.
    if (current !== this || asked < this.sideDataShown) return;
    this.sideDataShown = asked;
    if (stats.status === 'fulfilled') this.renderStats(stats.value);
    if (attention.status === 'fulfilled') this.renderAttention(attention.value);
  }

  renderStats(stats) {
    const card = (label, count, attributes) =>
      h('a', { class: 'stat', ...attributes }, h('span', { class: 'stat-count' }, String(count)), h('span', { class: 'stat-label' }, label));
    replaceChildren(
      this.statsSection,
      card('total', stats.total, { href: '#/', 'data-testid': 'count-total' }),
      STATUSES.map((s) =>
        card(statusLabel(s), stats.byStatus[s] ?? 0, { href: listHash({ status: s }), class: `stat stat-${s}`, 'data-testid': `count-${s}` }),
      ),
      card('needs attention', stats.needsAttention, {
        href: listHash({ attention: true }),
        class: `stat stat-attention${stats.needsAttention > 0 ? ' alarming' : ''}`,
        'data-testid': 'count-attention',
      }),
      h(
        'div',
        { class: 'modes', 'data-testid': 'count-modes' },
        MODES.map((m) =>
          h('a', { class: 'mode-count', href: listHash({ mode: m }), dataset: { mode: m } }, h('span', { class: 'chip' }, m), ` ${stats.byMode[m] ?? 0}`),
        ),
      ),
    );
  }

  renderAttention(page) {
    this.attentionSection.hidden = page.items.length === 0;
    replaceChildren(
      this.attentionSection,
      h('h2', {}, '⚠ Needs attention', h('span', { class: 'muted' }, ` (${page.items.length}${page.nextCursor ? '+' : ''})`)),
      h('p', { class: 'muted' }, 'Phase 2 keeps failing or a participant refused it. Check the participant, then retry.'),
      h(
        'ul',
        { class: 'attention-list' },
        page.items.map((tx) => {
          const failing = tx.branches.filter((b) => b.lastError !== null);
          return h(
            'li',
            { dataset: { gid: tx.gid } },
            txLink(tx.gid),
            statusBadge(tx.status),
            h('span', { class: 'chip' }, tx.mode),
            // A branch's `attempts` counts its calls in every phase (its try too), not the retries of the failing one.
            h('span', { class: 'muted' }, failing.map((b) => `${b.participant}: ${describeJson(b.lastError)} (${b.attempts} calls)`).join('; ') || 'no error recorded'),
          );
        }),
      ),
    );
  }

  /** Whether a transaction belongs to the list under the current filters. */
  matches(tx) {
    const f = this.filters;
    return (
      (!f.status || tx.status === f.status) &&
      (!f.mode || tx.mode === f.mode) &&
      (!f.participant || tx.branches.some((b) => b.participant === f.participant)) &&
      (!f.attention || tx.needsAttention) &&
      (!f.from || Date.parse(tx.createdAt) >= Date.parse(f.from)) &&
      (!f.to || Date.parse(tx.createdAt) < Date.parse(f.to))
    );
  }

  /** Puts a changed transaction where it belongs (or takes it out); flashes its row. */
  upsert(tx) {
    if (!this.matches(tx)) {
      if (this.rows.delete(tx.gid)) this.renderRows();
      return;
    }
    const known = this.rows.has(tx.gid);
    // Older than everything loaded while more pages remain: it will come with "Load more".
    const oldest = [...this.rows.values()].at(-1);
    if (!known && this.nextCursor && oldest && compareNewestFirst(tx, oldest) > 0) return;
    this.rows.set(tx.gid, tx);
    this.rows = new Map([...this.rows.entries()].sort(([, a], [, b]) => compareNewestFirst(a, b)));
    this.renderRows(tx.gid);
  }

  renderRows(flashGid = null) {
    const rows = [...this.rows.values()].map((tx) => this.row(tx, tx.gid === flashGid));
    if (rows.length === 0) {
      rows.push(h('tr', { class: 'empty' }, h('td', { colspan: 6 }, 'No transactions match these filters.')));
    }
    replaceChildren(this.tbody, rows);
    this.tbody.parentElement.dataset.state = 'ready';
    this.summary.textContent = `${this.rows.size} shown${this.nextCursor ? ', more below' : ''}`;
    this.loadMoreButton.hidden = !this.nextCursor;
  }

  row(tx, flash) {
    const participants = [...new Set(tx.branches.map((b) => b.participant))];
    return h(
      'tr',
      {
        class: [tx.needsAttention ? 'needs-attention' : '', flash ? 'flash' : ''].join(' ').trim() || null,
        dataset: { gid: tx.gid, status: tx.status, mode: tx.mode },
        onclick: (e) => {
          if (!(e.target instanceof HTMLAnchorElement)) location.hash = `#/tx/${encodeURIComponent(tx.gid)}`;
        },
      },
      h('td', {}, txLink(tx.gid), tx.needsAttention ? attentionBadge() : null),
      h('td', {}, h('span', { class: 'chip' }, tx.mode)),
      h('td', {}, statusBadge(tx.status), tx.reason ? h('span', { class: 'reason' }, tx.reason.replace('_', ' ')) : null),
      h('td', { class: 'branches-cell' }, `${tx.branches.length} · `, h('span', { class: 'muted' }, participants.join(', ') || '—')),
      h('td', { class: 'time', title: tx.createdAt }, formatDateTime(tx.createdAt)),
      h('td', { class: 'time', title: tx.updatedAt }, formatDateTime(tx.updatedAt)),
    );
  }

  /** Changed transactions, coalesced: refetch each one (or the page after a burst) and the counts. */
  onChanges(gids) {
    if (gids.length > BURST_RELOAD_THRESHOLD) return this.reload();
    return this.inTurn(async () => {
      const views = await Promise.allSettled(gids.map((gid) => getTransaction(gid)));
      if (current !== this) return;
      for (const result of views) if (result.status === 'fulfilled') this.upsert(result.value);
      this.refreshSideDataSoon();
    });
  }

  /**
   * The counts cost the server a pass over the whole log (about 0.2 s at a million rows), so
   * under a stream of changes they are refreshed at most every SIDE_DATA_EVERY_MS, the last
   * change always included.
   */
  refreshSideDataSoon() {
    if (this.sideDataTimer) return;
    const wait = Math.max(0, (this.sideDataAt ?? 0) + SIDE_DATA_EVERY_MS - Date.now());
    this.sideDataTimer = setTimeout(() => {
      this.sideDataTimer = null;
      this.sideDataAt = Date.now();
      void this.refreshSideData();
    }, wait);
  }
}

/** Newest first, as the API pages: createdAt descending, then gid descending. */
function compareNewestFirst(a, b) {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.gid < b.gid ? 1 : a.gid > b.gid ? -1 : 0;
}

// ---------------------------------------------------------------------------------- one transaction

class TransactionPage {
  constructor(gid) {
    this.gid = gid;
    this.generation = 0;
    /** The folded runs of retries the operator opened, so a live re-render keeps them open. */
    this.openRuns = new Set();
  }

  mount() {
    replaceChildren(view, h('p', { class: 'muted' }, 'Loading…'));
    return this.reload();
  }

  async reload() {
    const generation = ++this.generation;
    try {
      const tx = await getTransaction(this.gid);
      if (generation === this.generation && current === this) this.render(tx);
    } catch (error) {
      if (current !== this) return;
      replaceChildren(view, h('a', { class: 'back', href: '#/' }, '← All transactions'), errorPanel(error));
    }
  }

  onChanges(gids) {
    if (gids.includes(this.gid)) return this.reload();
  }

  render(tx) {
    const canRetry = tx.status === 'committing' || tx.status === 'rolling_back' || (tx.mode === 'saga' && tx.status === 'active');
    const canRollback = tx.status === 'active';
    replaceChildren(
      view,
      h('a', { class: 'back', href: '#/' }, '← All transactions'),
      h(
        'section',
        { class: 'panel tx-header', 'data-testid': 'tx-header', dataset: { gid: tx.gid, status: tx.status } },
        h(
          'div',
          { class: 'tx-title' },
          h('h1', { class: 'gid' }, tx.gid),
          statusBadge(tx.status, 'large'),
          h('span', { class: 'chip' }, tx.mode),
          tx.reason ? h('span', { class: 'reason', 'data-testid': 'tx-reason' }, `reason: ${tx.reason.replace('_', ' ')}`) : null,
          tx.needsAttention ? attentionBadge() : null,
        ),
        h(
          'dl',
          { class: 'meta' },
          h('dt', {}, 'Created'),
          h('dd', { title: tx.createdAt }, formatDateTime(tx.createdAt)),
          h('dt', {}, 'Updated'),
          h('dd', { title: tx.updatedAt }, formatDateTime(tx.updatedAt)),
          h('dt', {}, 'Deadline'),
          h('dd', { title: tx.deadline }, formatDateTime(tx.deadline)),
          Object.keys(tx.metadata ?? {}).length ? [h('dt', {}, 'Metadata'), h('dd', {}, h('code', {}, JSON.stringify(tx.metadata)))] : null,
          tx.workflow ? [h('dt', {}, 'Workflow'), h('dd', {}, `${tx.workflow.name} on ${tx.workflow.participant}`)] : null,
          tx.workflow ? [h('dt', {}, 'Input'), h('dd', {}, h('code', {}, JSON.stringify(tx.input)))] : null,
          tx.workflow && tx.result !== null ? [h('dt', {}, 'Result'), h('dd', {}, h('code', {}, JSON.stringify(tx.result)))] : null,
          traceLink(tx),
        ),
        h(
          'div',
          { class: 'actions' },
          h(
            'button',
            {
              type: 'button',
              class: 'button',
              'data-action': 'retry',
              disabled: !canRetry,
              title: canRetry ? 'Deliver phase 2 (or the next saga step) now' : 'Only a transaction in phase 2 (or a running saga) can be retried',
              onclick: () => this.retry(),
            },
            '↻ Retry now',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'button danger',
              'data-action': 'rollback',
              disabled: !canRollback,
              title: canRollback ? 'Roll back every branch (reason admin)' : 'Only an active transaction can be rolled back',
              onclick: () => this.rollback(),
            },
            '⤺ Force rollback',
          ),
        ),
      ),
      h('section', { class: 'panel' }, h('h2', {}, `Branches (${tx.branches.length})`), this.branchesTable(tx)),
      this.locksPanel(tx),
      h('section', { class: 'panel' }, h('h2', {}, `Timeline (${tx.events.length} events)`), this.timeline(tx)),
    );
  }

  /** The rows each AT branch's prepare locked, and how long they are (or were) held; nothing for a transaction without AT branches. */
  locksPanel(tx) {
    const locked = tx.branches.filter((b) => b.locks);
    if (locked.length === 0) return null;
    const total = locked.reduce((sum, b) => sum + b.locks.count, 0);
    const holding = locked.some((b) => b.locks.releasedAt === null);
    return h(
      'section',
      { class: 'panel', 'data-testid': 'tx-locks' },
      h('h2', {}, `Locks (${total} row${total === 1 ? '' : 's'})`),
      h(
        'p',
        { class: 'muted' },
        holding
          ? "Rows this transaction's AT branches hold locked in their participants' databases, until each branch's phase 2 finishes."
          : 'Rows its AT branches held locked, released when each branch committed or rolled back.',
      ),
      h(
        'table',
        { class: 'branch-table lock-table' },
        h('thead', {}, h('tr', {}, ['Branch', 'Participant', 'Table', 'Key', 'Since', 'Held for'].map((t) => h('th', {}, t)))),
        h(
          'tbody',
          {},
          locked.flatMap((b) => {
            const { locks } = b;
            const state = locks.releasedAt === null ? 'held' : 'released';
            const held = () =>
              h(
                'td',
                {},
                h('span', { class: `held ${state}`, title: locks.releasedAt ? `released ${locks.releasedAt}` : 'held now' }, formatDuration(locks.heldMs)),
                locks.releasedAt ? h('span', { class: 'muted' }, ` · released ${formatTime(locks.releasedAt)}`) : h('span', { class: 'muted' }, ' · held'),
              );
            const rows = locks.rows.map((row) =>
              h(
                'tr',
                { dataset: { branch: b.branchId, table: row.table, key: row.key, state } },
                h('td', { class: 'mono' }, b.branchId),
                h('td', {}, b.participant),
                h('td', { class: 'mono' }, row.table),
                h('td', { class: 'mono' }, row.key),
                h('td', { class: 'time', title: locks.since }, formatTime(locks.since)),
                held(),
              ),
            );
            const unnamed = locks.count - locks.rows.length;
            if (unnamed > 0) {
              rows.push(
                h(
                  'tr',
                  { dataset: { branch: b.branchId, state } },
                  h('td', { class: 'mono' }, b.branchId),
                  h('td', {}, b.participant),
                  h('td', { class: 'muted', colspan: 2 }, `+${unnamed} more row${unnamed === 1 ? '' : 's'} (the participant names the first ${locks.rows.length})`),
                  h('td', { class: 'time', title: locks.since }, formatTime(locks.since)),
                  held(),
                ),
              );
            }
            return rows;
          }),
        ),
      ),
    );
  }

  branchesTable(tx) {
    if (tx.branches.length === 0) return h('p', { class: 'muted' }, tx.mode === 'workflow' ? 'No step recorded yet.' : 'No branch yet.');
    // A workflow's branches are its steps, in the order its host recorded them, each of its own kind.
    const steps = tx.mode === 'workflow';
    return h(
      'table',
      { class: 'branch-table', 'data-testid': 'branches' },
      h(
        'thead',
        {},
        h('tr', {}, (steps ? ['Step', 'Kind', 'Participant', 'Action', 'Status'] : ['Branch', 'Participant', 'Action', 'Status']).map((t) => h('th', {}, t)), h('th', { class: 'num', title: 'Calls made to the branch, every phase together; the timeline numbers the attempts of each phase' }, 'Calls'), h('th', {}, 'Last error'), h('th', {}, 'Result')),
      ),
      h(
        'tbody',
        {},
        tx.branches.map((b) =>
          h(
            'tr',
            { dataset: { branch: b.branchId, status: b.status, waiting: b.waitingSince ? 'true' : 'false' } },
            h('td', { class: 'mono' }, b.branchId),
            steps ? h('td', {}, h('span', { class: 'chip' }, b.kind ?? '—')) : null,
            h('td', {}, b.participant),
            h('td', {}, b.action),
            // A 202 (long-running) is no failure: the branch waits for its participant's answer.
            h(
              'td',
              {},
              statusBadge(b.status),
              b.waitingSince
                ? h('span', { class: 'waiting', 'data-testid': 'waiting' }, ' waiting since ', h('time', { datetime: b.waitingSince, title: b.waitingSince }, formatTime(b.waitingSince)))
                : null,
            ),
            h('td', { class: 'num' }, String(b.attempts)),
            b.lastError === null ? h('td', { class: 'none' }, '—') : h('td', { class: 'error-text' }, describeJson(b.lastError)),
            b.result === null || b.result === undefined ? h('td', { class: 'none' }, '—') : h('td', { class: 'mono small' }, JSON.stringify(b.result)),
          ),
        ),
      ),
    );
  }

  /**
   * The history, oldest first. Calls repeated to one branch in one phase with one outcome (a
   * participant down through hundreds of retries) fold into one line that says how many, from
   * when to when, and the last error; it opens to show each.
   */
  timeline(tx) {
    const participantOf = new Map(tx.branches.map((b) => [b.branchId, `${b.participant} / ${b.action}`]));
    const attempts = phaseAttempts(tx.events);
    const entry = (index) => {
      const event = tx.events[index];
      const { title, details, tone } = describeEvent(event, participantOf, attempts[index]);
      return h(
        'li',
        { class: `event tone-${tone}`, dataset: { type: event.type, ...(event.detail?.phase ? { phase: event.detail.phase } : {}), ...(attempts[index] ? { attempt: String(attempts[index]) } : {}) } },
        eventTime(event.at),
        h('div', { class: 'event-body' }, h('div', { class: 'event-title' }, title), details.length ? h('div', { class: 'event-details' }, details) : null),
      );
    };
    return h(
      'ol',
      { class: 'timeline', 'data-testid': 'timeline' },
      repeatRuns(tx.events).map((run) => (run.length === 1 ? entry(run[0]) : this.repeatedCalls(tx.events, run, participantOf, attempts, entry))),
    );
  }

  /** One line for a run of repeated calls (see timeline), opening to the calls themselves. */
  repeatedCalls(events, run, participantOf, attempts, entry) {
    const first = events[run[0]];
    const last = events[run.at(-1)];
    const { phase, outcome } = first.detail;
    const who = participantOf.get(first.branchId) ?? first.branchId;
    const key = `${first.branchId}/${phase}/${outcome}@${run[0]}`;
    const lastError = [...run].reverse().map((i) => events[i].detail.error).find((error) => error !== undefined);
    return h(
      'li',
      {
        class: `event repeated tone-${callTone(outcome)}`,
        dataset: { type: 'call', phase, outcome, branch: first.branchId, repeat: String(run.length) },
      },
      eventTime(first.at),
      h(
        'details',
        {
          class: 'event-body',
          open: this.openRuns.has(key),
          ontoggle: (e) => (e.target.open ? this.openRuns.add(key) : this.openRuns.delete(key)),
        },
        h(
          'summary',
          {},
          h('span', { class: 'event-title' }, `${who} ← ${phase}: ${outcome} `, h('span', { class: 'repeat-count' }, `×${run.length}`)),
          // Spans: a summary holds phrasing content only.
          h(
            'span',
            { class: 'event-details' },
            detail(`branch ${first.branchId}`),
            detail(`attempts ${attempts[run[0]]}–${attempts[run.at(-1)]}`),
            detail(h('span', {}, 'first ', h('time', { datetime: first.at, title: first.at }, formatTime(first.at)))),
            detail(h('span', {}, 'last ', h('time', { datetime: last.at, title: last.at }, formatTime(last.at)))),
            lastError !== undefined ? h('span', { class: 'event-error' }, `last error: ${describeJson(lastError)}`) : null,
          ),
        ),
        h('ol', { class: 'timeline repeats' }, run.map(entry)),
      ),
    );
  }

  async retry() {
    const yes = await confirmAction({
      title: `Retry ${this.gid}?`,
      text: 'Phase 2 (or the next saga step) is delivered now instead of at its next scheduled attempt. Participants must be reachable for it to succeed.',
      confirmLabel: 'Retry now',
    });
    if (yes) await this.act(() => retryTransaction(this.gid), 'Retry scheduled');
  }

  async rollback() {
    const yes = await confirmAction({
      title: `Force rollback of ${this.gid}?`,
      text: 'Every branch is cancelled or rolled back (reason admin). The client that started this transaction can no longer commit it. This cannot be undone.',
      confirmLabel: 'Force rollback',
    });
    if (yes) await this.act(() => rollbackTransaction(this.gid), 'Rollback decided');
  }

  async act(call, done) {
    try {
      const tx = await call();
      toast(`${done}: ${this.gid} is ${statusLabel(tx.status)}`, 'ok');
    } catch (error) {
      toast(`Refused: ${error.message}`, 'error');
    }
    // Events that change no status (an operator's retry) reach no stream: show them now.
    await this.reload();
  }
}

const eventTime = (at) => h('time', { datetime: at, title: at }, formatTime(at));

// An ongoing answer (202) is the participant saying it is still at work: neutral, not a warning.
const callTone = (outcome) => (outcome === 'ok' ? 'ok' : outcome === 'failed' ? 'failed' : outcome === 'ongoing' ? 'info' : 'warn');

/**
 * Turns one history event into a line of the timeline: who was called, with what answer.
 * `attempt`: a call's number within its branch and phase (phaseAttempts).
 */
function describeEvent(event, participantOf, attempt) {
  const d = event.detail ?? {};
  const who = event.branchId ? participantOf.get(event.branchId) ?? event.branchId : null;
  const move = event.from || event.to ? `${event.from ?? '∅'} → ${event.to ?? '∅'}` : null;
  switch (event.type) {
    case 'created':
      return {
        title: 'Transaction created',
        details: [`${d.mode ?? ''}${d.oneShot ? ', one-shot' : d.oneShot === false ? ', interactive' : ''}`, d.timeoutMs ? `timeout ${Math.round(d.timeoutMs / 1000)} s` : null].filter(Boolean).map(detail),
        tone: 'neutral',
      };
    case 'branch_added':
      return { title: `Branch ${event.branchId} added`, details: [detail(`${d.participant} / ${d.action}`)], tone: 'neutral' };
    case 'call': {
      const outcome = d.outcome ?? 'unknown';
      return {
        title: `${who ?? d.participant} ← ${d.phase}: ${outcome}`,
        details: [
          detail(`branch ${event.branchId}`),
          detail(`attempt ${attempt ?? '?'}`),
          move ? detail(`branch ${move}`) : null,
          d.error !== undefined ? h('span', { class: 'event-error' }, describeJson(d.error)) : null,
        ].filter(Boolean),
        tone: callTone(outcome),
      };
    }
    case 'status':
      return {
        title: `Status ${move ?? ''}`,
        details: [d.reason ? detail(`reason ${d.reason}`) : null, d.cause ? detail(`after ${String(d.cause).replaceAll('_', ' ')}`) : null].filter(Boolean),
        tone: event.to === 'committed' ? 'ok' : event.to === 'rolled_back' || event.to === 'rolling_back' ? 'failed' : 'info',
      };
    case 'attention':
      return { title: 'Flagged for attention', details: [detail(`${d.attempts ?? '?'} failed rounds${d.refused ? ', refused by a participant' : ''}`)], tone: 'warn' };
    case 'admin_retry':
      return { title: 'Retry requested by an operator', details: [], tone: 'info' };
    case 'outcome_reported': {
      // A participant told the final answer of a call it had answered 202 (PROTOCOL.md 3.6): no call was made.
      const outcome = d.outcome ?? 'unknown';
      return {
        title: `${who ?? d.participant} reported ${d.phase}: ${outcome}`,
        details: [
          detail(`branch ${event.branchId}`),
          move ? detail(`branch ${move}`) : null,
          d.error !== undefined ? h('span', { class: 'event-error' }, describeJson(d.error)) : null,
        ].filter(Boolean),
        tone: callTone(outcome),
      };
    }
    default:
      return { title: event.type, details: [move ? detail(move) : null, Object.keys(d).length ? detail(JSON.stringify(d)) : null].filter(Boolean), tone: 'neutral' };
  }
}

const detail = (text) => h('span', { class: 'event-detail' }, text);

/**
 * The transaction's trace in the operator's tracing UI, when the coordinator has TRACE_UI_URL
 * and the transaction was begun in a trace: the admin API fills the link in (traceUrl, an http(s)
 * URL checked at start-up). Opened in a tab of its own, telling the tracing UI nothing of this page.
 */
function traceLink(tx) {
  if (!tx.traceId || !tx.traceUrl) return null;
  return [
    h('dt', {}, 'Trace'),
    h('dd', {}, h('a', { class: 'trace-link', href: tx.traceUrl, target: '_blank', rel: 'noopener noreferrer', title: `Trace ${tx.traceId}`, 'data-testid': 'tx-trace' }, tx.traceId)),
  ];
}

// ---------------------------------------------------------------------------------- locks held now

/**
 * The row locks AT branches hold now (GET /admin/locks), held longest first. The times held
 * count up on screen between fetches; the list refetches on every change of a transaction (one
 * that finishes releases its locks) and every LOCKS_REFRESH_MS (a branch added takes some).
 */
class LocksPage {
  constructor() {
    this.items = [];
    this.nextCursor = null;
    this.generation = 0;
    /** When the items on screen were read (this page's clock), to count their times held up from. */
    this.readAt = 0;
  }

  mount() {
    this.tbody = h('tbody');
    this.summary = h('span', { class: 'muted', 'data-testid': 'locks-summary' });
    this.loadMoreButton = h('button', { type: 'button', class: 'button', hidden: true, onclick: () => this.loadMore() }, 'Load more');
    replaceChildren(
      view,
      h(
        'section',
        { class: 'panel' },
        h('h2', {}, 'Locks held now'),
        h(
          'p',
          { class: 'muted' },
          "Rows AT transactions hold locked in their participants' databases, held longest first. A plain write to such a row is refused until its transaction's branch commits or rolls back.",
        ),
        h(
          'table',
          { class: 'tx-table lock-table', 'data-testid': 'held-locks', 'data-state': 'loading' },
          h(
            'thead',
            {},
            h('tr', {}, ['Transaction', 'Branch', 'Participant / action', 'Status'].map((t) => h('th', {}, t)), h('th', { class: 'num' }, 'Rows'), h('th', {}, 'Locked'), h('th', {}, 'Since'), h('th', {}, 'Held for')),
          ),
          this.tbody,
        ),
        h('div', { class: 'list-footer' }, this.summary, this.loadMoreButton),
      ),
    );
    this.tick();
    return this.reload();
  }

  /** Counts the times held up every second, and refetches every LOCKS_REFRESH_MS, while this page is on screen. */
  tick(seconds = 0) {
    setTimeout(() => {
      if (current !== this) return; // another page is on screen: stop
      this.updateHeld();
      const refresh = (seconds + 1) * 1000 >= LOCKS_REFRESH_MS;
      if (refresh) void this.reload();
      this.tick(refresh ? 0 : seconds + 1);
    }, 1000);
  }

  async reload() {
    const generation = ++this.generation;
    try {
      const page = await listHeldLocks(null);
      if (generation !== this.generation || current !== this) return;
      this.items = page.items;
      this.nextCursor = page.nextCursor;
      this.readAt = Date.now();
      this.render();
    } catch (error) {
      if (current !== this) return;
      replaceChildren(this.tbody, h('tr', {}, h('td', { colspan: 8 }, errorPanel(error))));
    }
  }

  async loadMore() {
    if (!this.nextCursor) return;
    const generation = this.generation;
    this.loadMoreButton.disabled = true;
    try {
      const page = await listHeldLocks(this.nextCursor);
      if (generation !== this.generation || current !== this) return;
      // Counted from this read: the earlier items' times held move up to it.
      const elapsed = Date.now() - this.readAt;
      this.items = [...this.items.map((item) => ({ ...item, heldMs: item.heldMs + elapsed })), ...page.items];
      this.nextCursor = page.nextCursor;
      this.readAt = Date.now();
      this.render();
    } catch (error) {
      toast(`Could not load more: ${error.message}`, 'error');
    } finally {
      this.loadMoreButton.disabled = false;
    }
  }

  onChanges() {
    return this.reload();
  }

  render() {
    const rows = this.items.map((item) =>
      h(
        'tr',
        {
          dataset: { gid: item.gid, branch: item.branchId, status: item.transactionStatus },
          onclick: (e) => {
            if (!(e.target instanceof HTMLAnchorElement)) location.hash = `#/tx/${encodeURIComponent(item.gid)}`;
          },
        },
        h('td', {}, txLink(item.gid)),
        h('td', { class: 'mono' }, item.branchId),
        h('td', {}, item.participant, h('span', { class: 'muted' }, ` / ${item.action}`)),
        h('td', {}, statusBadge(item.transactionStatus)),
        h('td', { class: 'num' }, String(item.count)),
        h(
          'td',
          {},
          h(
            'ul',
            { class: 'lock-rows' },
            item.rows.slice(0, 5).map((row) => h('li', { dataset: { table: row.table, key: row.key } }, `${row.table} ${row.key}`)),
            item.count > Math.min(5, item.rows.length) ? h('li', { class: 'muted' }, `+${item.count - Math.min(5, item.rows.length)} more`) : null,
          ),
        ),
        h('td', { class: 'time', title: item.since }, formatDateTime(item.since)),
        h('td', {}, h('span', { class: 'held', dataset: { heldMs: String(item.heldMs) } }, formatDuration(item.heldMs))),
      ),
    );
    if (rows.length === 0) rows.push(h('tr', { class: 'empty' }, h('td', { colspan: 8 }, 'No transaction holds a lock now.')));
    replaceChildren(this.tbody, rows);
    this.tbody.parentElement.dataset.state = 'ready';
    this.summary.textContent = `${this.items.length} branch${this.items.length === 1 ? '' : 'es'} holding locks${this.nextCursor ? ', more below' : ''}`;
    this.loadMoreButton.hidden = !this.nextCursor;
  }

  /** The times held as of now: the ones read, plus the time since the read. */
  updateHeld() {
    const elapsed = Date.now() - this.readAt;
    for (const cell of this.tbody.querySelectorAll('.held[data-held-ms]')) {
      cell.textContent = formatDuration(Number(cell.dataset.heldMs) + elapsed);
    }
  }
}

// ---------------------------------------------------------------------------------- participants

const BREAKER_LABELS = { closed: 'closed', open: 'breaker open', half_open: 'breaker half-open' };

/**
 * A participant's circuit breaker: a badge when it is open or half-open (calls are held back),
 * plain text when closed, a dash before this instance has called it.
 */
function breakerCell(load) {
  if (!load) return h('span', { class: 'muted', dataset: { breaker: 'none' } }, '—');
  if (load.breaker === 'closed') return h('span', { class: 'muted', dataset: { breaker: 'closed' } }, 'closed');
  const retry = load.breakerRetryInMs === null ? '' : ` · probe in ${formatDuration(load.breakerRetryInMs)}`;
  return h(
    'span',
    {
      class: `badge breaker breaker-${load.breaker}`,
      dataset: { breaker: load.breaker },
      title: 'Transient failures in a row: calls to this participant are held back and their transactions try again later',
    },
    `${BREAKER_LABELS[load.breaker] ?? load.breaker}${retry}`,
  );
}

/**
 * The participants and their gates on the instance that answers (GET /admin/participants):
 * the circuit breaker, calls in flight over the adaptive limit, the queue, and the calls not
 * made. Refetched every PARTICIPANTS_REFRESH_MS while on screen.
 */
class ParticipantsPage {
  constructor() {
    this.generation = 0;
  }

  mount() {
    this.tbody = h('tbody');
    this.summary = h('span', { class: 'muted', 'data-testid': 'participants-summary' });
    replaceChildren(
      view,
      h(
        'section',
        { class: 'panel' },
        h('h2', {}, 'Participants'),
        h(
          'p',
          { class: 'muted' },
          'Each coordinator instance keeps its own gate per participant; this is the gate of the instance that answered. ' +
            'In flight / limit: calls out now over the adaptive limit (its ceiling in brackets). Not made: calls held back by the breaker, a full queue, or a wait too long.',
        ),
        h(
          'table',
          { class: 'tx-table participant-table', 'data-testid': 'participants', 'data-state': 'loading' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Participant'),
              h('th', {}, 'Transport'),
              h('th', {}, 'Breaker'),
              h('th', { class: 'num' }, 'In flight / limit'),
              h('th', { class: 'num' }, 'Queued'),
              h('th', { class: 'num' }, 'Not made'),
            ),
          ),
          this.tbody,
        ),
        h('div', { class: 'list-footer' }, this.summary),
      ),
    );
    this.tick();
    return this.reload();
  }

  tick() {
    setTimeout(() => {
      if (current !== this) return; // another page is on screen: stop
      void this.reload().finally(() => this.tick());
    }, PARTICIPANTS_REFRESH_MS);
  }

  async reload() {
    const generation = ++this.generation;
    try {
      const participants = await listParticipants();
      if (generation !== this.generation || current !== this) return;
      this.render(participants);
    } catch (error) {
      if (current !== this) return;
      replaceChildren(this.tbody, h('tr', {}, h('td', { colspan: 6 }, errorPanel(error))));
    }
  }

  onChanges() {
    // Transactions moving say nothing about the gates; the timer refetches.
  }

  render(participants) {
    const rows = participants.map((p) => {
      const load = p.load;
      const ceiling = load ? load.maxInFlight : p.maxInFlight;
      const notMade = load ? load.notMade.breakerOpen + load.notMade.queueFull + load.notMade.queueTimeout : 0;
      return h(
        'tr',
        { dataset: { participant: p.name, breaker: load ? load.breaker : 'none' } },
        h('td', {}, p.name, p.maxInFlight === null ? null : h('span', { class: 'chip override', title: 'Ceiling set by an operator (PUT /admin/participants/{name}/limits)' }, `max ${p.maxInFlight}`)),
        h('td', {}, h('span', { class: 'chip' }, p.transport)),
        h('td', { 'data-testid': 'breaker' }, breakerCell(load)),
        h('td', { class: 'num', 'data-testid': 'in-flight' }, load ? `${load.inFlight} / ${load.limit}` : '—', ceiling === null || ceiling === undefined ? null : h('span', { class: 'muted' }, ` (${ceiling})`)),
        h('td', { class: 'num', 'data-testid': 'queued' }, load ? String(load.queued) : '—'),
        h(
          'td',
          {
            class: 'num',
            'data-testid': 'not-made',
            title: load ? `breaker open ${load.notMade.breakerOpen}, queue full ${load.notMade.queueFull}, waited too long ${load.notMade.queueTimeout}` : null,
          },
          load ? String(notMade) : '—',
        ),
      );
    });
    if (rows.length === 0) rows.push(h('tr', { class: 'empty' }, h('td', { colspan: 6 }, 'No participant is registered.')));
    replaceChildren(this.tbody, rows);
    this.tbody.parentElement.dataset.state = 'ready';
    const held = participants.filter((p) => p.load && p.load.breaker !== 'closed').length;
    this.summary.textContent = `${participants.length} participant${participants.length === 1 ? '' : 's'}${held ? `, ${held} with the breaker open or half-open` : ''}`;
  }
}

// ---------------------------------------------------------------------------------- live updates

/**
 * Changes are batched for a moment so a burst (a busy coordinator) costs one round of fetches;
 * the stream's `ready` event (at connect and every reconnect) reloads the page, since changes
 * made while disconnected were never sent.
 */
function listenForChanges() {
  const pending = new Set();
  let flushScheduled = false;
  const flush = async () => {
    flushScheduled = false;
    const gids = [...pending];
    pending.clear();
    await current?.onChanges(gids);
  };
  const stream = openChangeStream();
  stream.addEventListener('ready', () => {
    liveIndicator.dataset.state = 'live';
    liveIndicator.textContent = 'Live';
    void current?.reload();
  });
  stream.addEventListener('tx', (event) => {
    const { gid } = JSON.parse(event.data);
    pending.add(gid);
    if (!flushScheduled) {
      flushScheduled = true;
      setTimeout(() => void flush(), 150);
    }
  });
  stream.addEventListener('error', () => {
    liveIndicator.dataset.state = stream.readyState === EventSource.CLOSED ? 'closed' : 'connecting';
    liveIndicator.textContent = stream.readyState === EventSource.CLOSED ? 'Disconnected — reload the page' : 'Reconnecting…';
  });
}

window.addEventListener('hashchange', route);
route();
listenForChanges();
