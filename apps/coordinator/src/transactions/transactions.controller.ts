import { Body, Controller, Get, Headers, HttpCode, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { AddBranchDto, BeginTransactionDto, DecideDto, ID_PATTERN, ReportOutcomeDto, type BranchOutcomeView, type PendingBranchView, type TransactionView } from '@nest-dtx/protocol';
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
      'saga: `steps`, sequential or, with `concurrent`, a DAG. PROTOCOL.md 3.1.',
  })
  @ApiHeader({ name: 'traceparent', required: false, schema: { type: 'string', maxLength: 16384 }, description: 'W3C trace context, kept with the transaction and sent on every participant call.' })
  @ApiAnswer(201, TransactionViewSchema, 'Created and durable (with `wait`: terminal, or its status when the limit passed).', {
    Location: { description: 'The new transaction: `/v1/transactions/{gid}`.', schema: { type: 'string', maxLength: 160, pattern: '^/v1/transactions/[A-Za-z0-9_.:-]{1,128}$' } },
  })
  @ApiAnswer(200, TransactionViewSchema, 'The same gid and body were sent before: the existing transaction.')
  @ApiErrors(
    { status: 400, codes: [ErrorCode.UNKNOWN_PARTICIPANT, ErrorCode.UNKNOWN_ACTION, ErrorCode.MODE_NOT_SUPPORTED], why: 'a branch or step names what is not registered' },
    { status: 409, codes: [ErrorCode.GID_CONFLICT], why: 'the gid names a transaction with a different body, or one another client key began' },
  )
  @ApiAdmissionControlled()
  async begin(
    @Body() dto: BeginTransactionDto,
    @Headers('traceparent') traceparent: string | undefined,
    @Res({ passthrough: true }) res: { status(code: number): unknown; header(name: string, value: string): unknown },
    @Req() request: AuthenticatedRequest,
  ): Promise<TransactionView> {
    const { created, view } = await this.transactions.begin(dto, traceparent, request.apiKey);
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

  @Post(':gid/commit')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Commit an interactive tcc/2pc transaction',
    description: 'Allowed when every branch is prepared; otherwise the transaction is rolled back (reason branch_failed) and the answer is 409 CANNOT_COMMIT. Idempotent. PROTOCOL.md 3.3.',
  })
  @ApiGidParam()
  @ApiBody({ type: DecideDto, required: false })
  @ApiAnswer(200, TransactionViewSchema, '`committing` (with `wait`: `committed`).')
  @ApiErrors(
    { status: 400, codes: [ErrorCode.WRONG_MODE], why: 'a saga is not decided by the client' },
    TX_NOT_FOUND,
    { status: 409, codes: [ErrorCode.CANNOT_COMMIT, ErrorCode.TX_ALREADY_DECIDED, ErrorCode.TX_NOT_ACTIVE], why: 'the body carries the transaction view as `transaction`' },
  )
  commit(@Param('gid', GidPipe) gid: string, @Body() dto: DecideDto, @Req() request: AuthenticatedRequest): Promise<TransactionView> {
    return this.transactions.commit(gid, dto.wait ?? false, request.apiKey);
  }

  @Post(':gid/rollback')
  @HttpCode(200)
  @ApiOperation({ summary: 'Roll back an interactive tcc/2pc transaction', description: 'Idempotent. PROTOCOL.md 3.3.' })
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
