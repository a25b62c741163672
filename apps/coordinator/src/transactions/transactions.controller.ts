import { Body, Controller, Get, Headers, HttpCode, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import {
  AddBranchDto,
  BeginTransactionDto,
  CommitDto,
  DecideDto,
  ID_PATTERN,
  RecordStepDto,
  ReportOutcomeDto,
  type BranchOutcomeView,
  type PendingBranchView,
  type TransactionView,
} from '@nest-dtx/protocol';
import { BranchOutcomeViewSchema, PendingBranchViewSchema, TransactionViewSchema } from '../docs/view-schemas.js';
import { ClientRateLimitGuard } from '../auth/client-rate-limit.js';
import type { AuthenticatedRequest } from '../auth/authenticate.js';
import { RequireRole } from '../auth/roles.decorator.js';
import { BranchIdPipe, GidPipe } from '../common/path-param.pipes.js';
import { ErrorCode } from '@nest-dtx/protocol';
import { ApiAdmissionControlled, ApiAnswer, ApiErrors, ApiGidParam, ApiStoreBacked, TX_NOT_FOUND } from '../docs/api-responses.js';
import { TransactionsService } from './transactions.service.js';

/** The client REST API (PROTOCOL.md 3). Each route is one call into the service. */
@ApiTags('transactions')
@ApiStoreBacked()
@Controller('v1/transactions')
@RequireRole('client')
// Rate limited per key or address (RATE_LIMIT_PER_MINUTE); runs after the global ApiKeyGuard.
@UseGuards(ClientRateLimitGuard)
export class TransactionsController {
  constructor(private readonly transactions: TransactionsService) {}

  @Post()
  @ApiOperation({
    summary: 'Begin a transaction',
    description:
      'tcc/2pc without `branches`: interactive (add branches, then commit or roll back). With `branches`: one-shot. ' +
      'saga: `steps`, sequential or, with `concurrent`, a DAG. workflow: `workflow` (its host and name) and `input`; its host records its steps. PROTOCOL.md 3.1, 3.7.',
  })
  @ApiHeader({ name: 'traceparent', required: false, schema: { type: 'string', maxLength: 16384 }, description: 'W3C trace context, kept with the transaction and sent on every participant call (with tracing on: the parent of the transaction\'s span, docs/observability.md).' })
  @ApiHeader({ name: 'tracestate', required: false, schema: { type: 'string', maxLength: 16384 }, description: 'W3C trace context: vendor state that goes with `traceparent`.' })
  @ApiAnswer(201, TransactionViewSchema, 'Created and durable (with `wait`: terminal, or its status when the limit passed).', {
    Location: { description: 'The new transaction: `/v1/transactions/{gid}`.', schema: { type: 'string', maxLength: 160, pattern: '^/v1/transactions/[A-Za-z0-9_.:-]{1,128}$' } },
  })
  @ApiAnswer(200, TransactionViewSchema, 'The same gid and body were sent before: the existing transaction.')
  @ApiErrors(
    {
      status: 400,
      codes: [ErrorCode.UNKNOWN_PARTICIPANT, ErrorCode.UNKNOWN_ACTION, ErrorCode.MODE_NOT_SUPPORTED],
      why: "a branch, step, check or workflow names what is not registered (a workflow: an action of its host with mode workflow)",
    },
    { status: 409, codes: [ErrorCode.GID_CONFLICT], why: 'the gid names a transaction with a different body, or one another client key began' },
  )
  @ApiAdmissionControlled()
  async begin(
    @Body() dto: BeginTransactionDto,
    @Headers('traceparent') traceparent: string | undefined,
    @Headers('tracestate') tracestate: string | undefined,
    @Res({ passthrough: true }) res: { status(code: number): unknown; header(name: string, value: string): unknown },
    @Req() request: AuthenticatedRequest,
  ): Promise<TransactionView> {
    const { created, view } = await this.transactions.begin(dto, { traceparent, tracestate }, request.apiKey);
    res.status(created ? 201 : 200);
    if (created) res.header('Location', `/v1/transactions/${view.gid}`);
    return view;
  }

  @Post(':gid/branches')
  @ApiOperation({
    summary: 'Add a branch to an interactive tcc/2pc transaction',
    description: 'Records the branch, runs its phase 1 (try / prepare) and answers its outcome. The same branchId again returns the recorded outcome. PROTOCOL.md 3.2.',
  })
  @ApiGidParam()
  @ApiAnswer(201, BranchOutcomeViewSchema, 'Phase 1 succeeded: status `prepared`.')
  @ApiAnswer(202, PendingBranchViewSchema, 'Phase 1 answered 202 (long-running, PROTOCOL.md 3.6): status `pending`; read the transaction until the branch is `prepared` or `failed`.')
  @ApiErrors(
    { status: 400, codes: [ErrorCode.UNKNOWN_PARTICIPANT, ErrorCode.UNKNOWN_ACTION, ErrorCode.WRONG_MODE], why: 'the branch names what is not registered, or the transaction is not interactive tcc/2pc' },
    TX_NOT_FOUND,
    {
      status: 409,
      codes: [ErrorCode.BRANCH_FAILED, ErrorCode.TX_NOT_ACTIVE, ErrorCode.BRANCH_CONFLICT, ErrorCode.TOO_MANY_BRANCHES],
      why: 'BRANCH_FAILED carries branchId, status `failed` and lastError; TX_NOT_ACTIVE the transaction; TOO_MANY_BRANCHES: MAX_BRANCHES_PER_TRANSACTION reached',
    },
    { status: 502, codes: [ErrorCode.BRANCH_UNKNOWN], why: 'no usable answer in time: outcome unknown (branchId, status `pending`, lastError); the client should roll back' },
  )
  async addBranch(
    @Param('gid', GidPipe) gid: string,
    @Body() dto: AddBranchDto,
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) res: { status(code: number): unknown },
  ): Promise<BranchOutcomeView | PendingBranchView> {
    const answer = await this.transactions.addBranch(gid, dto, request.apiKey);
    if (answer.status === 'pending') res.status(202);
    return answer;
  }

  @Post(':gid/branches/:branchId/outcome')
  @HttpCode(200)
  @RequireRole('participant')
  @ApiOperation({
    summary: "Report the final answer of a phase a participant answered 202 (ongoing)",
    description:
      'Sooner than the next repeat of the call: the same effect that answer to the call would have had (`ok` = 2xx, `failed` = 409), once. ' +
      "Only with the key that owns the branch's participant name. msg's check-back is branch `check`. PROTOCOL.md 3.6.",
  })
  @ApiGidParam()
  @ApiParam({ name: 'branchId', description: 'The branch (a saga step: its name).', schema: { type: 'string', pattern: ID_PATTERN.source, maxLength: 128, example: 'b1' } })
  @ApiAnswer(200, TransactionViewSchema, 'Recorded, and the transaction driven on; a repeat of a report already recorded answers the same.')
  @ApiErrors(
    { status: 403, codes: [ErrorCode.FORBIDDEN], why: "the branch's participant name belongs to another API key" },
    { status: 404, codes: [ErrorCode.TX_NOT_FOUND, ErrorCode.NOT_FOUND], why: 'no transaction of that gid, or no branch of that branchId in it' },
    {
      status: 409,
      codes: [ErrorCode.PHASE_NOT_IN_PROGRESS],
      why: 'the phase is not in progress for the branch (another phase, not sent yet, or settled otherwise); the body carries the transaction view as `transaction`',
    },
    { status: 503, codes: [ErrorCode.OVERLOADED], why: 'a coordinator instance kept driving the transaction while the report waited for it; nothing was written: send it again after Retry-After' },
  )
  reportOutcome(
    @Param('gid', GidPipe) gid: string,
    @Param('branchId', BranchIdPipe) branchId: string,
    @Body() dto: ReportOutcomeDto,
    @Req() request: AuthenticatedRequest,
  ): Promise<TransactionView> {
    return this.transactions.reportOutcome(gid, branchId, dto, request.apiKey);
  }

  @Post(':gid/steps')
  @ApiOperation({
    summary: "Record a workflow's step",
    description:
      'The workflow\'s host records each step as it runs. tcc / 2pc / saga: the step is recorded and its phase 1 (try / prepare / execute) run, answered as an added branch. ' +
      'local: recorded `committed` with its `result`, and its `compensate` called on rollback. The same stepId again returns the recorded outcome and calls no one; ' +
      'with another kind, participant or action it is 409 STEP_MISMATCH. Every step puts off the workflow\'s resume. PROTOCOL.md 3.7.',
  })
  @ApiGidParam()
  @ApiAnswer(201, BranchOutcomeViewSchema, 'Recorded: a branch step `prepared` (tcc / 2pc) or `committed` (saga), with its participant\'s result; a local step `committed` with its own.')
  @ApiAnswer(202, PendingBranchViewSchema, 'Phase 1 answered 202 (long-running, PROTOCOL.md 3.6): the step is `pending`; read the transaction until it is `prepared`, `committed` or `failed`.')
  @ApiErrors(
    {
      status: 400,
      codes: [ErrorCode.UNKNOWN_PARTICIPANT, ErrorCode.UNKNOWN_ACTION, ErrorCode.WRONG_MODE],
      why: 'the step (or a local step\'s compensate, a saga action) names what is not registered for its kind, or the transaction is not a workflow',
    },
    TX_NOT_FOUND,
    {
      status: 409,
      codes: [ErrorCode.BRANCH_FAILED, ErrorCode.STEP_MISMATCH, ErrorCode.TX_NOT_ACTIVE, ErrorCode.TOO_MANY_BRANCHES],
      why: 'BRANCH_FAILED carries branchId, status `failed` and lastError; STEP_MISMATCH and TX_NOT_ACTIVE the transaction; TOO_MANY_BRANCHES: MAX_BRANCHES_PER_TRANSACTION reached',
    },
    { status: 502, codes: [ErrorCode.BRANCH_UNKNOWN], why: 'no usable answer in time: outcome unknown (branchId, status `pending`, lastError)' },
  )
  async recordStep(
    @Param('gid', GidPipe) gid: string,
    @Body() dto: RecordStepDto,
    @Res({ passthrough: true }) res: { status(code: number): unknown },
    @Req() request: AuthenticatedRequest,
  ): Promise<BranchOutcomeView | PendingBranchView> {
    const answer = await this.transactions.recordStep(gid, dto, request.apiKey);
    if (answer.status === 'pending') res.status(202);
    return answer;
  }

  @Post(':gid/commit')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Commit an interactive tcc/2pc transaction or a workflow',
    description:
      'Allowed when every branch is prepared (a workflow: every tcc / 2pc step prepared, every saga and local step committed); otherwise the transaction is rolled back ' +
      '(reason branch_failed) and the answer is 409 CANNOT_COMMIT. A workflow\'s commit may carry its `result`. Idempotent. PROTOCOL.md 3.3, 3.7.',
  })
  @ApiGidParam()
  @ApiBody({ type: CommitDto, required: false })
  @ApiAnswer(200, TransactionViewSchema, '`committing` (with `wait`: `committed`).')
  @ApiErrors(
    { status: 400, codes: [ErrorCode.WRONG_MODE], why: 'a saga is not decided by the client' },
    TX_NOT_FOUND,
    { status: 409, codes: [ErrorCode.CANNOT_COMMIT, ErrorCode.TX_ALREADY_DECIDED, ErrorCode.TX_NOT_ACTIVE], why: 'the body carries the transaction view as `transaction`' },
  )
  commit(@Param('gid', GidPipe) gid: string, @Body() dto: CommitDto, @Req() request: AuthenticatedRequest): Promise<TransactionView> {
    return this.transactions.commit(gid, dto.wait ?? false, request.apiKey, dto.result);
  }

  @Post(':gid/rollback')
  @HttpCode(200)
  @ApiOperation({ summary: 'Roll back an interactive tcc/2pc transaction or a workflow', description: 'Idempotent. PROTOCOL.md 3.3, 3.7.' })
  @ApiGidParam()
  @ApiBody({ type: DecideDto, required: false })
  @ApiAnswer(200, TransactionViewSchema, '`rolling_back` (with `wait`: `rolled_back`).')
  @ApiErrors(
    { status: 400, codes: [ErrorCode.WRONG_MODE], why: 'a saga is not decided by the client' },
    TX_NOT_FOUND,
    { status: 409, codes: [ErrorCode.TX_ALREADY_DECIDED, ErrorCode.TX_NOT_ACTIVE], why: 'already committing or committed; the body carries the transaction view as `transaction`' },
  )
  rollback(@Param('gid', GidPipe) gid: string, @Body() dto: DecideDto, @Req() request: AuthenticatedRequest): Promise<TransactionView> {
    return this.transactions.rollback(gid, dto.wait ?? false, request.apiKey);
  }

  @Get(':gid')
  @ApiOperation({ summary: 'Read a transaction and its branches', description: 'PROTOCOL.md 3.4.' })
  @ApiGidParam()
  @ApiAnswer(200, TransactionViewSchema, 'The transaction.')
  @ApiErrors(TX_NOT_FOUND)
  get(@Param('gid', GidPipe) gid: string, @Req() request: AuthenticatedRequest): Promise<TransactionView> {
    return this.transactions.get(gid, request.apiKey);
  }
}
