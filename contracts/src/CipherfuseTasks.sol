// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title CipherfuseTasks: escrowed, committee-verified model-building tasks
/// @author cipherfuse developers
/// @notice One deployment serves many tasks. A task moves through: published (budget escrowed)
/// -> join window (contributors and verifiers register with deposits; verifiers register their
/// X25519 box key and committee endpoint; contributors may leave until they claim) -> claim
/// window (a contributor submits the storage CID, content hash and byte size of its encrypted
/// model) -> per claim: the claimant reveals a committed seed which, mixed with the hash of a
/// block mined after the claim, draws the committee from the pool as it stood at claim time ->
/// the claimant posts one key box per member -> members commit, then reveal, their votes ->
/// settlement (fees only to the majority) -> the accepted contributor locks the release, then
/// publishes the model-decryption envelope -> after expiry the initiator reclaims what is left.
/// @dev Payments are pull-based (`creditOf` + `withdraw`). Every per-transaction loop is
/// bounded by `MAX_DRAW_STEPS` or `MAX_COMMITTEE_SIZE`, never by the number of participants.
/// Invariant: address(this).balance == sum(creditOf) + sum over tasks of
/// (escrow + reserved + depositsHeld) + burned + ETH forced in without a call (selfdestruct or
/// block rewards: untracked, owned by nobody, never paid out).
/// Integer caps: a task's escrow and reservations are uint88 (at most 3.09e26 wei, 309 million
/// ETH), its held deposits uint80 (1.2e24 wei, 1.2 million ETH; each deposit must fit one),
/// rewards, fees and deposits uint96; task ids fit uint32, claims per task uint16, verifiers per
/// task `MAX_VERIFIERS`, timestamps uint40 (year 36812), model sizes uint64.
contract CipherfuseTasks {
    /// @notice Largest committee a task may ask for.
    uint8 public constant MAX_COMMITTEE_SIZE = 15;
    /// @notice The committee is drawn from the hash of the block this many blocks after the
    /// claim (or after a re-anchor).
    uint64 public constant DRAW_BLOCK_DELAY = 1;
    /// @notice `blockhash` only sees the last 256 blocks.
    uint64 public constant BLOCKHASH_HORIZON = 256;
    /// @notice Most pool positions one draw may visit (slashed verifiers are skipped); bounds the
    /// draw's gas. A draw that finds fewer than `committeeSize` eligible members within it ends
    /// the claim inconclusive with every deposit refunded.
    uint256 public constant MAX_DRAW_STEPS = 64;
    /// @notice Most verifiers one task accepts (pool indices and slash sequence numbers are
    /// uint16).
    uint256 public constant MAX_VERIFIERS = 65_535;
    /// @notice Longest committee endpoint a verifier may register, in bytes ("host:port", a
    /// multiaddr or a URL).
    uint256 public constant MAX_ENDPOINT_BYTES = 128;
    /// @notice Largest key box, in bytes (an X25519 box of a 32-byte key is 98).
    uint256 public constant MAX_KEY_BOX_BYTES = 256;

    /// @notice Life cycle of one claim.
    enum ClaimStatus {
        None,
        AwaitingSeed,
        Voting,
        Accepted,
        Rejected,
        Inconclusive,
        Void,
        Released,
        Forfeited,
        ReleasePending
    }

    /// @notice Role of an address in one task (an address holds at most one role per task).
    enum Role {
        None,
        Contributor,
        Verifier
    }

    /// @notice State of a participant in one task.
    enum ParticipantState {
        None,
        Active,
        Claimed,
        Left,
        Retired,
        Slashed
    }

    /// @notice Parameters chosen by the initiator at publication.
    struct TaskParams {
        uint16 minAccuracyBps;
        uint8 committeeSize;
        uint16 maxClaims;
        uint96 rewardPerModel;
        uint96 verifierFee;
        uint96 contributorDeposit;
        uint96 verifierDeposit;
        uint32 joinWindow;
        uint32 claimWindow;
        uint32 drawWindow;
        uint32 commitWindow;
        uint32 revealWindow;
        uint32 releaseWindow;
    }

    /// @notice Stored state of a task. `openClaims` counts the claims that hold a reward
    /// reservation (awaiting their draw, under vote, accepted or releasing, released); void,
    /// rejected, inconclusive and forfeited claims give their slot back. `unsettledClaims`
    /// counts claims not yet settled (verifiers retire only when it is zero). `slashCount` is the
    /// number of verifiers slashed so far (the pool epoch a claim's draw is fixed to).
    struct Task {
        address initiator;
        uint16 maxClaims;
        uint16 openClaims;
        uint8 committeeSize;
        uint16 minAccuracyBps;
        uint16 unsettledClaims;
        uint16 slashCount;
        uint96 rewardPerModel;
        uint96 verifierFee;
        uint64 joinEnd;
        uint96 contributorDeposit;
        uint96 verifierDeposit;
        uint64 claimEnd;
        uint32 drawWindow;
        uint32 commitWindow;
        uint32 revealWindow;
        uint32 releaseWindow;
        uint64 expiry;
        uint88 escrow;
        uint88 reserved;
        uint80 depositsHeld;
        bytes32 objectiveHash;
    }

    /// @notice Stored state of a claim. The model hash, seed commitment and envelope
    /// commitment are published in full in `ClaimSubmitted`; storage keeps only
    /// `commitmentsDigest = keccak256(abi.encode(modelHash, seedCommitment, envelopeCommitment))`
    /// and every call that needs one of them re-checks the digest. `poolEpoch` is the task's
    /// `slashCount` at claim time: verifiers slashed later still count as eligible for this
    /// claim's draw, so the pool the draw sees is the one fixed at claim time. `entropy` holds the
    /// captured draw-block hash while the seed is awaited, the draw's randomness afterwards.
    struct Claim {
        address claimant;
        uint32 taskId;
        ClaimStatus status;
        uint8 acceptVotes;
        uint8 rejectVotes;
        uint40 claimedAt;
        uint40 drawBlock;
        uint40 commitDeadline;
        uint40 revealDeadline;
        uint40 releaseDeadline;
        uint64 modelSize;
        uint16 poolEpoch;
        bool boxesPosted;
        uint8 abortVotes;
        bytes32 commitmentsDigest;
        bytes32 entropy;
    }

    /// @notice A participant's record in one task. `slashSeq` is 1 + the task's slash count at
    /// the moment this verifier was slashed (0 if never).
    struct Participant {
        Role role;
        ParticipantState state;
        uint16 verifierIndex;
        uint16 slashSeq;
        uint64 claimId;
    }

    /// @notice A verifier's entry in the on-chain key directory of a task.
    struct VerifierKey {
        bytes32 boxKey;
        bytes endpoint;
    }

    // A ballot is one slot: 0 = not a member, 1 = member without a vote, 2 = revealed accept,
    // 3 = revealed reject, any other value = the member's vote commitment.
    bytes32 private constant BALLOT_MEMBER = bytes32(uint256(1));
    bytes32 private constant BALLOT_ACCEPT = bytes32(uint256(2));
    bytes32 private constant BALLOT_REJECT = bytes32(uint256(3));
    /// @dev A revealed abort: the member could not judge (its three-party computation
    /// aborted). It counts as revealed (never slashed) but neither accept nor reject.
    bytes32 private constant BALLOT_ABORT = bytes32(uint256(4));
    /// @dev Stands in for the vote in an abort commitment (never the ABI encoding of a bool).
    bytes32 public constant ABORT_VOTE = keccak256("cipherfuse.abort-vote");

    /// @notice Number of tasks published so far (task ids are 1..taskCount).
    uint256 public taskCount;
    /// @notice Number of claims submitted so far (claim ids are 1..claimCount).
    uint256 public claimCount;
    /// @notice Wei burned by lapsed releases (held by the contract forever, owned by nobody).
    uint256 public burned;
    /// @notice Wei each account may withdraw.
    mapping(address account => uint256 amount) public creditOf;

    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 claimId => Claim) private _claims;
    mapping(uint256 taskId => mapping(address account => Participant)) private _participants;
    mapping(uint256 taskId => address[]) private _pool;
    mapping(uint256 taskId => mapping(address verifier => VerifierKey)) private _keys;
    mapping(uint256 taskId => mapping(bytes32 modelHash => uint256 claimId)) private _claimOfModel;
    mapping(uint256 claimId => mapping(address voter => bytes32 ballot)) private _ballots;

    bool private transient _locked;

    // ------------------------------------------------------------------ events

    /// @notice A task was published and its budget escrowed.
    event TaskPublished(
        uint256 indexed taskId,
        address indexed initiator,
        string objectiveUri,
        bytes32 objectiveHash,
        uint256 budget
    );
    /// @notice A contributor registered with its deposit.
    event ContributorJoined(uint256 indexed taskId, address indexed contributor, uint256 deposit);
    /// @notice A contributor left before claiming; its deposit was credited back.
    event ContributorLeft(uint256 indexed taskId, address indexed contributor, uint256 refund);
    /// @notice A verifier registered with its deposit, its X25519 box key and its committee
    /// endpoint.
    event VerifierJoined(
        uint256 indexed taskId,
        address indexed verifier,
        uint256 deposit,
        bytes32 boxKey,
        bytes endpoint
    );
    /// @notice A verifier left after expiry; its deposit was credited back.
    event VerifierRetired(uint256 indexed taskId, address indexed verifier, uint256 refund);
    /// @notice A verifier missed a reveal and lost its deposit to the task escrow.
    event VerifierSlashed(uint256 indexed taskId, address indexed verifier, uint256 amount);
    /// @notice A contributor claimed with the storage CID, content hash and byte size of its
    /// encrypted model.
    event ClaimSubmitted(
        uint256 indexed taskId,
        uint256 indexed claimId,
        address indexed claimant,
        string modelCid,
        bytes32 modelHash,
        uint64 modelSize,
        bytes32 seedCommitment,
        bytes32 envelopeCommitment,
        uint256 drawBlock
    );
    /// @notice Someone stored the draw block's hash while `blockhash` could still see it.
    event DrawHashCaptured(uint256 indexed claimId, uint256 drawBlock, bytes32 drawHash);
    /// @notice The draw block left the blockhash horizon uncaptured; the draw moved to a fresh
    /// block.
    event DrawReanchored(uint256 indexed claimId, uint256 drawBlock);
    /// @notice The claimant revealed its seed and the committee was drawn.
    event CommitteeDrawn(
        uint256 indexed claimId, bytes32 seed, bytes32 randomness, address[] members
    );
    /// @notice The claimant posted one key box per committee member, in draw order.
    event KeyBoxesPosted(uint256 indexed claimId, address indexed claimant, bytes[] boxes);
    /// @notice A committee member committed to a hidden vote.
    event VoteCommitted(uint256 indexed claimId, address indexed verifier, bytes32 commitment);
    /// @notice A committee member revealed its vote.
    event VoteRevealed(uint256 indexed claimId, address indexed verifier, bool accept);
    /// @notice A committee member revealed an abort (it could not judge the claim).
    event AbortRevealed(uint256 indexed claimId, address indexed verifier);
    /// @notice A claim was settled with the given outcome.
    event ClaimSettled(
        uint256 indexed claimId, ClaimStatus outcome, uint8 acceptVotes, uint8 rejectVotes
    );
    /// @notice The accepted claimant locked its release before the deadline (no forfeit from
    /// now on); the envelope follows.
    event ReleaseCommitted(uint256 indexed claimId, address indexed contributor);
    /// @notice The accepted contributor released the model-decryption envelope.
    event EnvelopeReleased(uint256 indexed claimId, address indexed contributor, bytes envelope);
    /// @notice A claim was forfeited: `toEscrow` wei went back to the task escrow and `burnt` wei
    /// were burned (a locked release that never followed).
    event ClaimForfeited(uint256 indexed claimId, uint256 toEscrow, uint256 burnt);
    /// @notice The initiator reclaimed unspent escrow after expiry.
    event BudgetReclaimed(uint256 indexed taskId, address indexed initiator, uint256 amount);
    /// @notice An account's withdrawable balance grew.
    event Credited(address indexed account, uint256 amount);
    /// @notice An account withdrew its balance.
    event Withdrawn(address indexed account, uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice A publication parameter (or the resulting budget) is out of range; `name` says
    /// which.
    error InvalidParameter(string name);
    /// @notice msg.value must equal `expected`.
    error WrongPayment(uint256 expected, uint256 sent);
    /// @notice No task has this id.
    error UnknownTask(uint256 taskId);
    /// @notice No claim has this id.
    error UnknownClaim(uint256 claimId);
    /// @notice The join window closed at `deadline`.
    error JoinWindowClosed(uint256 deadline);
    /// @notice The claim window opens at `opensAt` and closes at `closesAt`.
    error ClaimWindowNotOpen(uint256 opensAt, uint256 closesAt);
    /// @notice The account already has a role in this task.
    error AlreadyRegistered(uint256 taskId, address account);
    /// @notice The account is not an active contributor of this task.
    error NotActiveContributor(uint256 taskId, address account);
    /// @notice The account is not an active verifier of this task.
    error NotActiveVerifier(uint256 taskId, address account);
    /// @notice Every claim the budget pays for is taken.
    error BudgetExhausted(uint256 taskId, uint256 maxClaims);
    /// @notice Fewer eligible verifiers than the committee size.
    error NotEnoughVerifiers(uint256 active, uint256 needed);
    /// @notice The task's verifier pool is full.
    error PoolFull(uint256 maxVerifiers);
    /// @notice A box key must be a non-zero 32-byte X25519 public key.
    error ZeroBoxKey();
    /// @notice The endpoint is longer than `MAX_ENDPOINT_BYTES`.
    error EndpointTooLong(uint256 length, uint256 maxLength);
    /// @notice A commitment may not be zero (nor, for votes, one of the ballot markers 1..3).
    error ZeroCommitment();
    /// @notice A model's byte size must be non-zero.
    error ZeroModelSize();
    /// @notice This model hash was already claimed in this task by claim `claimId`.
    error ModelAlreadyClaimed(uint256 taskId, uint256 claimId);
    /// @notice Only the claimant may do this.
    error NotClaimant(uint256 claimId, address caller);
    /// @notice The claim is not in the status this call needs.
    error WrongClaimStatus(uint256 claimId, ClaimStatus status);
    /// @notice The seed may be revealed from block `firstBlock` on.
    error SeedRevealTooEarly(uint256 firstBlock);
    /// @notice The seed reveal window ended at time `deadline`.
    error SeedRevealTooLate(uint256 deadline);
    /// @notice The draw block `drawBlock` is beyond the blockhash horizon and its hash was not
    /// captured; call `reanchorDraw` first.
    error DrawBlockExpired(uint256 drawBlock);
    /// @notice The draw block's hash is still visible (or already captured): no re-anchor.
    error DrawBlockNotExpired(uint256 drawBlock);
    /// @notice The draw block's hash was already captured.
    error DrawHashAlreadyCaptured(uint256 claimId);
    /// @notice The revealed value does not match the stored commitment.
    error CommitmentMismatch();
    /// @notice Key boxes were already posted for this claim.
    error KeyBoxesAlreadyPosted(uint256 claimId);
    /// @notice One key box per committee member is needed (`expected`), got `given`.
    error WrongKeyBoxCount(uint256 expected, uint256 given);
    /// @notice Key box `index` has `length` bytes; allowed 1..`MAX_KEY_BOX_BYTES`.
    error BadKeyBoxLength(uint256 index, uint256 length);
    /// @notice The caller is not on this claim's committee.
    error NotCommitteeMember(uint256 claimId, address caller);
    /// @notice The vote commit window closed at `deadline`.
    error CommitWindowClosed(uint256 deadline);
    /// @notice The caller already committed a vote.
    error AlreadyCommitted(uint256 claimId, address verifier);
    /// @notice The reveal window runs from `opensAt` (exclusive) to `closesAt` (inclusive).
    error RevealWindowNotOpen(uint256 opensAt, uint256 closesAt);
    /// @notice The caller has no unrevealed commitment.
    error NothingToReveal(uint256 claimId, address verifier);
    /// @notice Settlement is possible after `notBefore`.
    error SettlementTooEarly(uint256 notBefore);
    /// @notice The release deadline `deadline` has passed.
    error ReleaseWindowClosed(uint256 deadline);
    /// @notice The deadline `deadline` for this forfeit has not passed yet.
    error ReleaseWindowOpen(uint256 deadline);
    /// @notice Only the task initiator may do this.
    error NotInitiator(uint256 taskId, address caller);
    /// @notice The task expires at `expiry`.
    error TaskNotExpired(uint256 expiry);
    /// @notice There is nothing to reclaim.
    error NothingToReclaim(uint256 taskId);
    /// @notice `unsettled` claims of the task are not settled yet (anyone may settle them).
    error VerifierHasDuties(uint256 unsettled);
    /// @notice The caller has no credit.
    error NothingToWithdraw(address account);
    /// @notice The ETH transfer to the caller failed.
    error TransferFailed(address account, uint256 amount);
    /// @notice A guarded function was re-entered.
    error Reentrancy();

    modifier nonReentrant() {
        if (_locked) revert Reentrancy();
        _locked = true;
        _;
        _locked = false;
    }

    // ------------------------------------------------------------------ initiator

    /// @notice Publish a task and escrow its whole budget.
    /// @dev Deposits are tied to what they guard: `contributorDeposit >= rewardPerModel` (a
    /// claim that is withheld, rejected or forfeited costs at least the reward a captured
    /// committee could pay, so grinding for a committee loses money unless a try succeeds with
    /// probability above 1/2) and `verifierDeposit >= verifierFee` (a missed reveal costs more
    /// than a paid vote earns).
    /// @param objectiveUri URI or CID of the task objective (data spec, model spec, test set).
    /// @param p Task parameters; msg.value must be `budgetOf(p)`.
    /// @return taskId The new task's id.
    function publishTask(string calldata objectiveUri, TaskParams calldata p)
        external
        payable
        returns (uint256 taskId)
    {
        _checkParams(p);
        uint256 budget = budgetOf(p);
        if (budget > type(uint88).max) revert InvalidParameter("budget");
        if (msg.value != budget) revert WrongPayment(budget, msg.value);
        taskId = ++taskCount;
        if (taskId > type(uint32).max) revert InvalidParameter("taskCount");
        bytes32 objectiveHash = keccak256(bytes(objectiveUri));
        _storeTask(taskId, p, objectiveHash);
        emit TaskPublished(taskId, msg.sender, objectiveUri, objectiveHash, budget);
    }

    /// @notice Budget a task with parameters `p` must escrow.
    /// @param p Task parameters.
    /// @return The reward plus every committee fee for `maxClaims` claims, in wei.
    function budgetOf(TaskParams calldata p) public pure returns (uint256) {
        return uint256(p.maxClaims) * _perClaimCost(p.rewardPerModel, p.verifierFee, p.committeeSize);
    }

    /// @notice After expiry, credit the unspent escrow (including slashed and forfeited
    /// deposits) to the initiator. May be called again if late settlements return more funds.
    /// @param taskId The task.
    function reclaimBudget(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.initiator) revert NotInitiator(taskId, msg.sender);
        if (block.timestamp <= t.expiry) revert TaskNotExpired(t.expiry);
        uint256 amount = t.escrow;
        if (amount == 0) revert NothingToReclaim(taskId);
        t.escrow = 0;
        emit BudgetReclaimed(taskId, msg.sender, amount);
        _credit(msg.sender, amount);
    }

    // ------------------------------------------------------------------ contributors

    /// @notice Register as a contributor during the join window, paying the deposit.
    /// @param taskId The task.
    function joinAsContributor(uint256 taskId) external payable {
        Task storage t = _task(taskId);
        _checkJoin(taskId, t, t.contributorDeposit);
        Participant storage me = _participants[taskId][msg.sender];
        me.role = Role.Contributor;
        me.state = ParticipantState.Active;
        t.depositsHeld += uint80(msg.value);
        emit ContributorJoined(taskId, msg.sender, msg.value);
    }

    /// @notice Leave a task before claiming; the deposit is credited back.
    /// @param taskId The task.
    function leaveAsContributor(uint256 taskId) external {
        Task storage t = _task(taskId);
        Participant storage me = _participants[taskId][msg.sender];
        if (me.role != Role.Contributor || me.state != ParticipantState.Active) {
            revert NotActiveContributor(taskId, msg.sender);
        }
        me.state = ParticipantState.Left;
        uint256 refund = t.contributorDeposit;
        t.depositsHeld -= uint80(refund);
        emit ContributorLeft(taskId, msg.sender, refund);
        _credit(msg.sender, refund);
    }

    /// @notice Claim the reward for a trained model during the claim window.
    /// @dev A claim is bound to its claimant: the seed commitment is
    /// `keccak256(abi.encode(taskId, claimant, seed))` and the envelope commitment is
    /// `keccak256(abi.encode(taskId, claimant, keccak256(envelope)))` (see
    /// `envelopeCommitmentOf`); judges check the envelope commitment with the claim's own task id
    /// and claimant, so a copied commitment fails their check, and a model hash already claimed
    /// in the task is refused here.
    /// @param taskId The task.
    /// @param modelCid Storage CID of the encrypted model.
    /// @param modelHash Content hash of the encrypted model.
    /// @param modelSize Byte size of the encrypted model blob (judges refuse a blob that is
    /// larger than their limit before fetching it, and any blob whose bytes differ in number).
    /// @param seedCommitment keccak256(abi.encode(taskId, claimant, seed)) for a secret seed.
    /// @param envelopeCommitment `envelopeCommitmentOf(taskId, claimant, keccak256(envelope))`.
    /// @return claimId The new claim's id.
    function submitClaim(
        uint256 taskId,
        string calldata modelCid,
        bytes32 modelHash,
        uint64 modelSize,
        bytes32 seedCommitment,
        bytes32 envelopeCommitment
    ) external returns (uint256 claimId) {
        claimId = _openClaim(taskId, modelHash, modelSize, seedCommitment, envelopeCommitment);
        emit ClaimSubmitted(
            taskId,
            claimId,
            msg.sender,
            modelCid,
            modelHash,
            modelSize,
            seedCommitment,
            envelopeCommitment,
            block.number + DRAW_BLOCK_DELAY
        );
    }

    /// @notice Store the draw block's hash while `blockhash` still sees it (anyone: the
    /// initiator, a verifier or a keeper). A claimant that sits on its seed past the horizon
    /// then gets no fresh draw from `reanchorDraw`; its reveal still uses this hash.
    /// @param claimId The claim.
    function captureDrawHash(uint256 claimId) external {
        Claim storage c = _claim(claimId);
        if (c.status != ClaimStatus.AwaitingSeed) revert WrongClaimStatus(claimId, c.status);
        if (c.entropy != 0) revert DrawHashAlreadyCaptured(claimId);
        if (block.number <= c.drawBlock) revert SeedRevealTooEarly(uint256(c.drawBlock) + 1);
        if (block.number > uint256(c.drawBlock) + BLOCKHASH_HORIZON) {
            revert DrawBlockExpired(c.drawBlock);
        }
        bytes32 h = blockhash(c.drawBlock);
        c.entropy = h;
        emit DrawHashCaptured(claimId, c.drawBlock, h);
    }

    /// @notice Move the draw of a claim whose draw block left the blockhash horizon uncaptured
    /// to the next block (anyone). Nothing is voided or paid: the party whose delay (or block
    /// flood) pushed the draw block out of sight gains no deposit, and the seed is still secret,
    /// so nobody knows the new committee before the new block exists.
    /// @param claimId The claim.
    function reanchorDraw(uint256 claimId) external {
        Claim storage c = _claim(claimId);
        if (c.status != ClaimStatus.AwaitingSeed) revert WrongClaimStatus(claimId, c.status);
        if (c.entropy != 0 || block.number <= uint256(c.drawBlock) + BLOCKHASH_HORIZON) {
            revert DrawBlockNotExpired(c.drawBlock);
        }
        uint256 deadline = uint256(c.claimedAt) + _tasks[c.taskId].drawWindow;
        if (block.timestamp > deadline) revert SeedRevealTooLate(deadline);
        uint40 drawBlock = uint40(block.number + DRAW_BLOCK_DELAY);
        c.drawBlock = drawBlock;
        emit DrawReanchored(claimId, drawBlock);
    }

    /// @notice Reveal the claim seed; with the draw block's hash it selects the committee.
    /// @dev Callable once the draw block is mined, until `claimedAt + drawWindow`, while the draw
    /// block's hash is visible or captured. The committee is `drawCommittee(randomness)` with
    /// `randomness = keccak256(abi.encode(seed, drawBlockHash, claimId))`: a partial
    /// Fisher-Yates shuffle of the pool positions fixed at claim time (see `committeeOf`).
    /// Grinding bound: the seed is fixed before the draw block exists and withholding it forfeits
    /// the deposit (>= the reward). The proposer of the draw block, if it colludes with the
    /// claimant, can choose among the hashes of the blocks it could propose (content variations
    /// change the hash) and withhold the block (losing its block reward) - i.e. it picks the best
    /// of as many committees as it can compute in its slot, plus one re-draw per withheld block.
    /// RANDAO over several later blocks would need the proposers of all of them; a VRF beacon
    /// would remove the proposer's choice altogether.
    /// @param claimId The claim.
    /// @param seed The secret seed committed at claim time.
    /// @param modelHash The model hash given at claim time.
    /// @param envelopeCommitment The envelope commitment given at claim time.
    function revealSeed(
        uint256 claimId,
        bytes32 seed,
        bytes32 modelHash,
        bytes32 envelopeCommitment
    ) external {
        Claim storage c = _claim(claimId);
        if (msg.sender != c.claimant) revert NotClaimant(claimId, msg.sender);
        if (c.status != ClaimStatus.AwaitingSeed) revert WrongClaimStatus(claimId, c.status);
        uint256 taskId = c.taskId;
        Task storage t = _tasks[taskId];
        bytes32 drawHash = _checkSeedWindow(c, t);
        bytes32 seedCommitment = keccak256(abi.encode(taskId, msg.sender, seed));
        if (
            commitmentsDigestOf(modelHash, seedCommitment, envelopeCommitment)
                != c.commitmentsDigest
        ) revert CommitmentMismatch();
        bytes32 randomness = keccak256(abi.encode(seed, drawHash, claimId));
        c.entropy = randomness;
        (address[] memory members, bool complete) =
            _drawCommittee(taskId, t.committeeSize, c.poolEpoch, randomness);
        if (!complete) {
            _settleWithoutCommittee(claimId, c, t);
            return;
        }
        c.status = ClaimStatus.Voting;
        uint40 commitDeadline = uint40(block.timestamp) + t.commitWindow;
        c.commitDeadline = commitDeadline;
        c.revealDeadline = commitDeadline + t.revealWindow;
        c.releaseDeadline = commitDeadline + t.revealWindow + t.releaseWindow;
        mapping(address => bytes32) storage ballots = _ballots[claimId];
        for (uint256 i = 0; i < members.length; ++i) {
            ballots[members[i]] = BALLOT_MEMBER;
        }
        emit CommitteeDrawn(claimId, seed, randomness, members);
    }

    /// @notice Post the key boxes of a drawn claim: `boxes[i]` is the sealing key encrypted to
    /// the registered box key of committee member `i` (draw order). Only the claimant, once,
    /// before the commit deadline; the bytes are in `KeyBoxesPosted`, so every box is
    /// authenticated by the claimant's transaction and addressed to a key from the directory.
    /// @param claimId The claim.
    /// @param boxes One box per member, each 1..`MAX_KEY_BOX_BYTES` bytes.
    function postKeyBoxes(uint256 claimId, bytes[] calldata boxes) external {
        Claim storage c = _claim(claimId);
        if (msg.sender != c.claimant) revert NotClaimant(claimId, msg.sender);
        if (c.status != ClaimStatus.Voting) revert WrongClaimStatus(claimId, c.status);
        if (block.timestamp > c.commitDeadline) revert CommitWindowClosed(c.commitDeadline);
        if (c.boxesPosted) revert KeyBoxesAlreadyPosted(claimId);
        uint256 size = _tasks[c.taskId].committeeSize;
        if (boxes.length != size) revert WrongKeyBoxCount(size, boxes.length);
        for (uint256 i = 0; i < size; ++i) {
            uint256 len = boxes[i].length;
            if (len == 0 || len > MAX_KEY_BOX_BYTES) revert BadKeyBoxLength(i, len);
        }
        c.boxesPosted = true;
        emit KeyBoxesPosted(claimId, msg.sender, boxes);
    }

    /// @notice Lock the release of an accepted claim before its release deadline: from now on
    /// it cannot be forfeited, so the envelope can be sent without anyone being able to
    /// front-run it into a forfeit. (The envelope's hash was committed at claim time; this call
    /// carries no secret.) Settling one's own accepted claim locks it too.
    /// @param claimId The claim.
    function commitRelease(uint256 claimId) external {
        Claim storage c = _claim(claimId);
        if (msg.sender != c.claimant) revert NotClaimant(claimId, msg.sender);
        if (c.status != ClaimStatus.Accepted) revert WrongClaimStatus(claimId, c.status);
        if (block.timestamp > c.releaseDeadline) revert ReleaseWindowClosed(c.releaseDeadline);
        c.status = ClaimStatus.ReleasePending;
        emit ReleaseCommitted(claimId, msg.sender);
    }

    /// @notice Release the model-decryption envelope of a claim whose release is locked; pays
    /// the reward and returns the deposit. The envelope must match the claim's envelope
    /// commitment; its bytes are in `EnvelopeReleased` (not stored).
    /// @param claimId The claim.
    /// @param envelope The envelope bytes (format defined by the roles layer).
    /// @param modelHash The model hash given at claim time.
    /// @param seedCommitment The seed commitment given at claim time.
    function releaseEnvelope(
        uint256 claimId,
        bytes calldata envelope,
        bytes32 modelHash,
        bytes32 seedCommitment
    ) external {
        Claim storage c = _claim(claimId);
        if (msg.sender != c.claimant) revert NotClaimant(claimId, msg.sender);
        if (c.status != ClaimStatus.ReleasePending) revert WrongClaimStatus(claimId, c.status);
        bytes32 envelopeCommitment =
            envelopeCommitmentOf(c.taskId, msg.sender, keccak256(envelope));
        if (
            commitmentsDigestOf(modelHash, seedCommitment, envelopeCommitment)
                != c.commitmentsDigest
        ) revert CommitmentMismatch();
        Task storage t = _tasks[c.taskId];
        c.status = ClaimStatus.Released;
        uint256 reward = t.rewardPerModel;
        uint256 deposit = t.contributorDeposit;
        t.reserved -= uint88(reward);
        t.depositsHeld -= uint80(deposit);
        emit EnvelopeReleased(claimId, msg.sender, envelope);
        _credit(msg.sender, reward + deposit);
    }

    /// @notice Forfeit a claim whose release did not happen (anyone). An accepted claim whose
    /// release was not locked by its release deadline: reward and deposit go back to the task
    /// escrow (the envelope was never sent, so the model stays sealed). A locked release whose
    /// envelope did not follow within a further `releaseWindow`: the reward goes back to the
    /// escrow and the deposit is burned (nobody gains from a release it delayed).
    /// @param claimId The claim.
    function forfeitUnreleased(uint256 claimId) external {
        Claim storage c = _claim(claimId);
        Task storage t = _tasks[c.taskId];
        uint256 reward = t.rewardPerModel;
        uint256 deposit = t.contributorDeposit;
        uint256 burnt;
        if (c.status == ClaimStatus.Accepted) {
            if (block.timestamp <= c.releaseDeadline) revert ReleaseWindowOpen(c.releaseDeadline);
        } else if (c.status == ClaimStatus.ReleasePending) {
            uint256 lapse = uint256(c.releaseDeadline) + t.releaseWindow;
            if (block.timestamp <= lapse) revert ReleaseWindowOpen(lapse);
            burnt = deposit;
        } else {
            revert WrongClaimStatus(claimId, c.status);
        }
        c.status = ClaimStatus.Forfeited;
        t.reserved -= uint88(reward);
        t.depositsHeld -= uint80(deposit);
        t.escrow += uint88(reward + deposit - burnt);
        t.openClaims -= 1;
        burned += burnt;
        emit ClaimForfeited(claimId, reward + deposit - burnt, burnt);
    }

    // ------------------------------------------------------------------ verifiers

    /// @notice Register as a verifier during the join window, paying the deposit, with the
    /// X25519 public key that key boxes are encrypted to and the endpoint of its committee
    /// channel. Both are bound to `msg.sender`: nobody can register a key in another's name.
    /// @param taskId The task.
    /// @param boxKey Raw 32-byte X25519 public key (non-zero).
    /// @param endpoint Committee-channel endpoint, at most `MAX_ENDPOINT_BYTES` (may be empty
    /// when the verifier offers none).
    function joinAsVerifier(uint256 taskId, bytes32 boxKey, bytes calldata endpoint)
        external
        payable
    {
        Task storage t = _task(taskId);
        _checkJoin(taskId, t, t.verifierDeposit);
        if (boxKey == 0) revert ZeroBoxKey();
        if (endpoint.length > MAX_ENDPOINT_BYTES) {
            revert EndpointTooLong(endpoint.length, MAX_ENDPOINT_BYTES);
        }
        address[] storage pool = _pool[taskId];
        if (pool.length >= MAX_VERIFIERS) revert PoolFull(MAX_VERIFIERS);
        Participant storage me = _participants[taskId][msg.sender];
        me.role = Role.Verifier;
        me.state = ParticipantState.Active;
        me.verifierIndex = uint16(pool.length);
        pool.push(msg.sender);
        VerifierKey storage key = _keys[taskId][msg.sender];
        key.boxKey = boxKey;
        if (endpoint.length != 0) key.endpoint = endpoint;
        t.depositsHeld += uint80(msg.value);
        emit VerifierJoined(taskId, msg.sender, msg.value, boxKey, endpoint);
    }

    /// @notice Commit to a hidden vote on a claim during its commit window.
    /// @param claimId The claim.
    /// @param commitment keccak256(abi.encode(claimId, verifier, accept, salt)), or for an
    /// abort keccak256(abi.encode(claimId, verifier, ABORT_VOTE, salt)) (see `revealAbort`).
    function commitVote(uint256 claimId, bytes32 commitment) external {
        Claim storage c = _claim(claimId);
        if (c.status != ClaimStatus.Voting) revert WrongClaimStatus(claimId, c.status);
        if (block.timestamp > c.commitDeadline) revert CommitWindowClosed(c.commitDeadline);
        if (uint256(commitment) <= uint256(BALLOT_ABORT)) revert ZeroCommitment();
        bytes32 ballot = _ballots[claimId][msg.sender];
        if (ballot == 0) revert NotCommitteeMember(claimId, msg.sender);
        if (ballot != BALLOT_MEMBER) revert AlreadyCommitted(claimId, msg.sender);
        _ballots[claimId][msg.sender] = commitment;
        emit VoteCommitted(claimId, msg.sender, commitment);
    }

    /// @notice Reveal a committed vote after the commit window and before the reveal deadline.
    /// @param claimId The claim.
    /// @param accept The vote: true accepts the model.
    /// @param salt The secret salt used in the commitment.
    function revealVote(uint256 claimId, bool accept, bytes32 salt) external {
        Claim storage c = _claim(claimId);
        bytes32 ballot = _revealableBallot(claimId, c);
        if (keccak256(abi.encode(claimId, msg.sender, accept, salt)) != ballot) {
            revert CommitmentMismatch();
        }
        if (accept) {
            _ballots[claimId][msg.sender] = BALLOT_ACCEPT;
            c.acceptVotes += 1;
        } else {
            _ballots[claimId][msg.sender] = BALLOT_REJECT;
            c.rejectVotes += 1;
        }
        emit VoteRevealed(claimId, msg.sender, accept);
    }

    /// @notice Reveal a committed abort: the member could not judge the claim (its
    /// committee's three-party computation aborted, for example because a member went
    /// silent). An abort is paid like a vote when the claim ends inconclusive and is never
    /// slashed; it is neither accept nor reject, so two aborting honest members and one
    /// deviating member can never make a majority.
    /// @param claimId The claim.
    /// @param salt The secret salt used in the commitment
    /// keccak256(abi.encode(claimId, verifier, ABORT_VOTE, salt)).
    function revealAbort(uint256 claimId, bytes32 salt) external {
        Claim storage c = _claim(claimId);
        bytes32 ballot = _revealableBallot(claimId, c);
        if (keccak256(abi.encode(claimId, msg.sender, ABORT_VOTE, salt)) != ballot) {
            revert CommitmentMismatch();
        }
        _ballots[claimId][msg.sender] = BALLOT_ABORT;
        c.abortVotes += 1;
        emit AbortRevealed(claimId, msg.sender);
    }

    /// @dev The caller's committed ballot on a claim in its reveal window (else reverts).
    function _revealableBallot(uint256 claimId, Claim storage c) private view returns (bytes32) {
        if (c.status != ClaimStatus.Voting) revert WrongClaimStatus(claimId, c.status);
        if (block.timestamp <= c.commitDeadline || block.timestamp > c.revealDeadline) {
            revert RevealWindowNotOpen(c.commitDeadline, c.revealDeadline);
        }
        bytes32 ballot = _ballots[claimId][msg.sender];
        if (uint256(ballot) <= uint256(BALLOT_ABORT)) {
            if (ballot == 0) revert NotCommitteeMember(claimId, msg.sender);
            revert NothingToReveal(claimId, msg.sender);
        }
        return ballot;
    }

    /// @notice After expiry, once every claim of the task is settled, an active verifier takes
    /// its deposit back.
    /// @param taskId The task.
    function retireVerifier(uint256 taskId) external {
        Task storage t = _task(taskId);
        Participant storage me = _participants[taskId][msg.sender];
        if (me.role != Role.Verifier || me.state != ParticipantState.Active) {
            revert NotActiveVerifier(taskId, msg.sender);
        }
        if (block.timestamp <= t.expiry) revert TaskNotExpired(t.expiry);
        if (t.unsettledClaims != 0) revert VerifierHasDuties(t.unsettledClaims);
        me.state = ParticipantState.Retired;
        uint256 refund = t.verifierDeposit;
        t.depositsHeld -= uint80(refund);
        emit VerifierRetired(taskId, msg.sender, refund);
        _credit(msg.sender, refund);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Settle a claim. Anyone may call: after the seed window for a claim whose seed
    /// was never revealed (void, deposit to the escrow), or after the reveal deadline (or once
    /// every member revealed) for a claim under vote. Fees go to the members whose revealed vote
    /// agrees with the outcome (every revealed member when inconclusive); a member who did not
    /// reveal is slashed. When the claimant settles its own accepted claim, its release is
    /// locked as by `commitRelease`.
    /// @param claimId The claim.
    function settleClaim(uint256 claimId) external {
        Claim storage c = _claim(claimId);
        Task storage t = _tasks[c.taskId];
        if (c.status == ClaimStatus.AwaitingSeed) {
            _settleVoid(claimId, c, t);
        } else if (c.status == ClaimStatus.Voting) {
            _settleVote(claimId, c, t);
        } else {
            revert WrongClaimStatus(claimId, c.status);
        }
    }

    /// @notice Withdraw the caller's whole credit.
    function withdraw() external nonReentrant {
        uint256 amount = creditOf[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        creditOf[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice Stored state of a task.
    /// @param taskId The task.
    /// @return The task record.
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _task(taskId);
    }

    /// @notice Stored state of a claim.
    /// @param claimId The claim.
    /// @return The claim record.
    function getClaim(uint256 claimId) external view returns (Claim memory) {
        return _claim(claimId);
    }

    /// @notice A participant's record in a task (zero record if none).
    /// @param taskId The task.
    /// @param account The participant.
    /// @return The participant record.
    function getParticipant(uint256 taskId, address account)
        external
        view
        returns (Participant memory)
    {
        return _participants[taskId][account];
    }

    /// @notice A verifier's registered box key and committee endpoint (zero/empty if none).
    /// @param taskId The task.
    /// @param verifier The verifier.
    /// @return boxKey Its X25519 public key.
    /// @return endpoint Its committee endpoint.
    function verifierKeyOf(uint256 taskId, address verifier)
        external
        view
        returns (bytes32 boxKey, bytes memory endpoint)
    {
        VerifierKey storage key = _keys[taskId][verifier];
        return (key.boxKey, key.endpoint);
    }

    /// @notice The verifier at a pool position (positions are fixed when the join window
    /// closes).
    /// @param taskId The task.
    /// @param index The position, 0..verifierCount-1.
    /// @return The verifier.
    function verifierAt(uint256 taskId, uint256 index) external view returns (address) {
        return _pool[taskId][index];
    }

    /// @notice Claim id that claimed `modelHash` in the task (0 if none).
    /// @param taskId The task.
    /// @param modelHash The model hash.
    /// @return The claim id.
    function claimOfModel(uint256 taskId, bytes32 modelHash) external view returns (uint256) {
        return _claimOfModel[taskId][modelHash];
    }

    /// @notice Committee drawn for a claim (empty before the draw or when none was drawn).
    /// @dev Recomputed from the stored randomness: `drawCommittee` over the pool and the
    /// eligibility the claim fixed at claim time.
    /// @param claimId The claim.
    /// @return members The members in draw order.
    function committeeOf(uint256 claimId) external view returns (address[] memory members) {
        Claim storage c = _claim(claimId);
        if (c.commitDeadline == 0) return members;
        Task storage t = _tasks[c.taskId];
        (members,) = _drawCommittee(c.taskId, t.committeeSize, c.poolEpoch, c.entropy);
    }

    /// @notice A committee member's ballot: the commitment (while committed), and the state
    /// (0 none, 1 member, 2 committed, 3 revealed accept, 4 revealed reject, 5 revealed abort).
    /// @param claimId The claim.
    /// @param voter The committee member.
    /// @return commitment The vote commitment (zero unless committed and not yet revealed).
    /// @return state The ballot state.
    function ballotOf(uint256 claimId, address voter)
        external
        view
        returns (bytes32 commitment, uint8 state)
    {
        bytes32 b = _ballots[claimId][voter];
        if (b == 0) return (0, 0);
        if (b == BALLOT_MEMBER) return (0, 1);
        if (b == BALLOT_ACCEPT) return (0, 3);
        if (b == BALLOT_REJECT) return (0, 4);
        if (b == BALLOT_ABORT) return (0, 5);
        return (b, 2);
    }

    /// @notice The digest a claim stores for its three public commitments.
    /// @param modelHash Content hash of the encrypted model.
    /// @param seedCommitment Commitment to the claim seed.
    /// @param envelopeCommitment The claim's envelope commitment.
    /// @return keccak256(abi.encode(modelHash, seedCommitment, envelopeCommitment)).
    function commitmentsDigestOf(
        bytes32 modelHash,
        bytes32 seedCommitment,
        bytes32 envelopeCommitment
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(modelHash, seedCommitment, envelopeCommitment));
    }

    /// @notice The envelope commitment of a claim: binds the envelope to task and claimant.
    /// @param taskId The task.
    /// @param claimant The claimant.
    /// @param envelopeHash keccak256 of the envelope bytes.
    /// @return keccak256(abi.encode(taskId, claimant, envelopeHash)).
    function envelopeCommitmentOf(uint256 taskId, address claimant, bytes32 envelopeHash)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, claimant, envelopeHash));
    }

    /// @notice Number of verifiers registered in a task's pool (including slashed ones, which
    /// stay in place so that pool positions never move).
    /// @param taskId The task.
    /// @return The count.
    function verifierCount(uint256 taskId) external view returns (uint256) {
        return _pool[taskId].length;
    }

    /// @notice Number of verifiers of a task still eligible for committees of new claims.
    /// @param taskId The task.
    /// @return The count.
    function activeVerifierCount(uint256 taskId) external view returns (uint256) {
        return _pool[taskId].length - _tasks[taskId].slashCount;
    }

    /// @notice Wei the contract holds for a task: escrow + reserved + deposits.
    /// @param taskId The task.
    /// @return The amount.
    function taskHoldings(uint256 taskId) external view returns (uint256) {
        Task storage t = _tasks[taskId];
        return uint256(t.escrow) + t.reserved + t.depositsHeld;
    }

    // ------------------------------------------------------------------ internals

    function _task(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.initiator == address(0)) revert UnknownTask(taskId);
    }

    function _claim(uint256 claimId) private view returns (Claim storage c) {
        c = _claims[claimId];
        if (c.claimant == address(0)) revert UnknownClaim(claimId);
    }

    function _perClaimCost(uint96 reward, uint96 fee, uint8 committeeSize)
        private
        pure
        returns (uint256)
    {
        return uint256(reward) + uint256(fee) * committeeSize;
    }

    function _checkParams(TaskParams calldata p) private pure {
        if (p.committeeSize == 0 || p.committeeSize > MAX_COMMITTEE_SIZE) {
            revert InvalidParameter("committeeSize");
        }
        if (p.maxClaims == 0) revert InvalidParameter("maxClaims");
        if (p.minAccuracyBps > 10_000) revert InvalidParameter("minAccuracyBps");
        if (p.rewardPerModel == 0) revert InvalidParameter("rewardPerModel");
        // Deposits are summed in a uint80 (and cast to it), so each must fit one.
        if (p.contributorDeposit > type(uint80).max || p.contributorDeposit < p.rewardPerModel) {
            revert InvalidParameter("contributorDeposit");
        }
        if (p.verifierDeposit > type(uint80).max || p.verifierDeposit < p.verifierFee) {
            revert InvalidParameter("verifierDeposit");
        }
        if (p.joinWindow == 0) revert InvalidParameter("joinWindow");
        if (p.claimWindow == 0) revert InvalidParameter("claimWindow");
        if (p.drawWindow == 0) revert InvalidParameter("drawWindow");
        if (p.commitWindow == 0) revert InvalidParameter("commitWindow");
        if (p.revealWindow == 0) revert InvalidParameter("revealWindow");
        if (p.releaseWindow == 0) revert InvalidParameter("releaseWindow");
    }

    function _storeTask(uint256 taskId, TaskParams calldata p, bytes32 objectiveHash) private {
        Task storage t = _tasks[taskId];
        uint64 joinEnd = uint64(block.timestamp) + p.joinWindow;
        uint64 claimEnd = joinEnd + p.claimWindow;
        t.initiator = msg.sender;
        t.maxClaims = p.maxClaims;
        t.committeeSize = p.committeeSize;
        t.minAccuracyBps = p.minAccuracyBps;
        t.rewardPerModel = p.rewardPerModel;
        t.verifierFee = p.verifierFee;
        t.joinEnd = joinEnd;
        t.contributorDeposit = p.contributorDeposit;
        t.verifierDeposit = p.verifierDeposit;
        t.claimEnd = claimEnd;
        t.drawWindow = p.drawWindow;
        t.commitWindow = p.commitWindow;
        t.revealWindow = p.revealWindow;
        t.releaseWindow = p.releaseWindow;
        t.expiry = claimEnd + uint64(p.drawWindow) + p.commitWindow + p.revealWindow
            + p.releaseWindow;
        t.escrow = uint88(msg.value);
        t.objectiveHash = objectiveHash;
    }

    function _checkJoin(uint256 taskId, Task storage t, uint256 deposit) private view {
        if (block.timestamp >= t.joinEnd) revert JoinWindowClosed(t.joinEnd);
        if (msg.value != deposit) revert WrongPayment(deposit, msg.value);
        if (_participants[taskId][msg.sender].role != Role.None || msg.sender == t.initiator) {
            revert AlreadyRegistered(taskId, msg.sender);
        }
    }

    function _checkClaimAllowed(uint256 taskId, Task storage t) private view {
        if (block.timestamp < t.joinEnd || block.timestamp >= t.claimEnd) {
            revert ClaimWindowNotOpen(t.joinEnd, t.claimEnd);
        }
        Participant storage me = _participants[taskId][msg.sender];
        if (me.role != Role.Contributor || me.state != ParticipantState.Active) {
            revert NotActiveContributor(taskId, msg.sender);
        }
        if (t.openClaims >= t.maxClaims) revert BudgetExhausted(taskId, t.maxClaims);
        uint256 eligible = _pool[taskId].length - t.slashCount;
        if (eligible < t.committeeSize) revert NotEnoughVerifiers(eligible, t.committeeSize);
    }

    function _openClaim(
        uint256 taskId,
        bytes32 modelHash,
        uint64 modelSize,
        bytes32 seedCommitment,
        bytes32 envelopeCommitment
    ) private returns (uint256 claimId) {
        Task storage t = _task(taskId);
        _checkClaimAllowed(taskId, t);
        if (modelHash == 0 || seedCommitment == 0 || envelopeCommitment == 0) {
            revert ZeroCommitment();
        }
        if (modelSize == 0) revert ZeroModelSize();
        uint256 earlier = _claimOfModel[taskId][modelHash];
        if (earlier != 0) revert ModelAlreadyClaimed(taskId, earlier);
        claimId = ++claimCount;
        _claimOfModel[taskId][modelHash] = claimId;
        uint256 cost = _perClaimCost(t.rewardPerModel, t.verifierFee, t.committeeSize);
        t.openClaims += 1;
        t.unsettledClaims += 1;
        t.escrow -= uint88(cost);
        t.reserved += uint88(cost);
        Participant storage me = _participants[taskId][msg.sender];
        me.state = ParticipantState.Claimed;
        me.claimId = uint64(claimId);
        Claim storage c = _claims[claimId];
        c.claimant = msg.sender;
        c.taskId = uint32(taskId);
        c.status = ClaimStatus.AwaitingSeed;
        c.claimedAt = uint40(block.timestamp);
        c.drawBlock = uint40(block.number + DRAW_BLOCK_DELAY);
        c.modelSize = modelSize;
        c.poolEpoch = t.slashCount;
        c.commitmentsDigest = commitmentsDigestOf(modelHash, seedCommitment, envelopeCommitment);
    }

    /// @dev Checks the reveal window and returns the draw block's hash (captured or live).
    function _checkSeedWindow(Claim storage c, Task storage t) private view returns (bytes32) {
        uint256 drawBlock = c.drawBlock;
        if (block.number <= drawBlock) revert SeedRevealTooEarly(drawBlock + 1);
        uint256 deadline = uint256(c.claimedAt) + t.drawWindow;
        if (block.timestamp > deadline) revert SeedRevealTooLate(deadline);
        bytes32 captured = c.entropy;
        if (captured != 0) return captured;
        if (block.number > drawBlock + BLOCKHASH_HORIZON) revert DrawBlockExpired(drawBlock);
        return blockhash(drawBlock);
    }

    /// @dev Partial Fisher-Yates shuffle of the pool positions 0..n-1 without touching storage:
    /// step s swaps position s with a uniform position in [s, n) (`keccak256(randomness, s)`
    /// modulo n - s; the modulo bias is below 2^-240) and visits the position that lands at s.
    /// Swapped positions live in a small memory map. A visited verifier is a member if it was
    /// eligible at claim time (never slashed, or slashed after the claim's pool epoch), so the
    /// committee is a uniform sample without replacement of the pool fixed at claim time, with
    /// no bias towards neighbours. At most `MAX_DRAW_STEPS` steps; `complete` is false if
    /// fewer than `size` members were found within them.
    function _drawCommittee(uint256 taskId, uint256 size, uint16 poolEpoch, bytes32 randomness)
        private
        view
        returns (address[] memory members, bool complete)
    {
        address[] storage pool = _pool[taskId];
        uint256 n = pool.length;
        uint256 steps = n < MAX_DRAW_STEPS ? n : MAX_DRAW_STEPS;
        // movedFrom[m] = position + 1 (0 = unused entry), movedTo[m] = what that position holds.
        uint256[] memory movedFrom = new uint256[](steps);
        uint256[] memory movedTo = new uint256[](steps);
        members = new address[](size);
        uint256 found;
        for (uint256 s = 0; s < steps && found < size; ++s) {
            uint256 j = s + uint256(keccak256(abi.encode(randomness, s))) % (n - s);
            address candidate = pool[_swap(movedFrom, movedTo, s, j)];
            if (poolEpoch == 0 || _eligible(taskId, candidate, poolEpoch)) {
                members[found++] = candidate;
            }
        }
        complete = found == size;
    }

    /// @dev One Fisher-Yates step on the virtual array A (A[x] = x unless mapped): returns
    /// A[j] and sets A[j] = A[s] (A[s] is never read again).
    function _swap(uint256[] memory movedFrom, uint256[] memory movedTo, uint256 s, uint256 j)
        private
        pure
        returns (uint256 atJ)
    {
        atJ = j;
        uint256 atS = s;
        uint256 slotJ = s; // where a new map entry for j goes if j was never moved
        for (uint256 m = 0; m < s; ++m) {
            uint256 key = movedFrom[m];
            if (key == j + 1) {
                atJ = movedTo[m];
                slotJ = m;
            }
            if (key == s + 1) atS = movedTo[m];
        }
        movedFrom[slotJ] = j + 1;
        movedTo[slotJ] = atS;
    }

    /// @dev Eligible for a draw fixed at `poolEpoch`: not slashed, or slashed after it.
    function _eligible(uint256 taskId, address verifier, uint16 poolEpoch)
        private
        view
        returns (bool)
    {
        Participant storage p = _participants[taskId][verifier];
        return p.state != ParticipantState.Slashed || p.slashSeq > poolEpoch;
    }

    function _settleWithoutCommittee(uint256 claimId, Claim storage c, Task storage t) private {
        c.status = ClaimStatus.Inconclusive;
        uint256 cost = _perClaimCost(t.rewardPerModel, t.verifierFee, t.committeeSize);
        t.reserved -= uint88(cost);
        t.escrow += uint88(cost);
        t.openClaims -= 1;
        t.unsettledClaims -= 1;
        t.depositsHeld -= uint80(t.contributorDeposit);
        emit ClaimSettled(claimId, ClaimStatus.Inconclusive, 0, 0);
        _credit(c.claimant, t.contributorDeposit);
    }

    function _settleVoid(uint256 claimId, Claim storage c, Task storage t) private {
        uint256 deadline = uint256(c.claimedAt) + t.drawWindow;
        if (block.timestamp <= deadline) revert SettlementTooEarly(deadline);
        c.status = ClaimStatus.Void;
        uint256 cost = _perClaimCost(t.rewardPerModel, t.verifierFee, t.committeeSize);
        t.reserved -= uint88(cost);
        t.depositsHeld -= uint80(t.contributorDeposit);
        t.escrow += uint88(cost + t.contributorDeposit);
        t.openClaims -= 1;
        t.unsettledClaims -= 1;
        emit ClaimSettled(claimId, ClaimStatus.Void, 0, 0);
    }

    function _settleVote(uint256 claimId, Claim storage c, Task storage t) private {
        uint8 size = t.committeeSize;
        uint256 revealed = uint256(c.acceptVotes) + c.rejectVotes + c.abortVotes;
        if (block.timestamp <= c.revealDeadline && revealed < size) {
            revert SettlementTooEarly(c.revealDeadline);
        }
        ClaimStatus outcome = ClaimStatus.Inconclusive;
        if (c.acceptVotes > size / 2) outcome = ClaimStatus.Accepted;
        else if (c.rejectVotes > size / 2) outcome = ClaimStatus.Rejected;
        uint256 paidFees = _payCommittee(claimId, c, t, outcome);
        uint256 fees = uint256(t.verifierFee) * size;
        uint256 toEscrow = fees - paidFees;
        uint256 reservedFreed = fees;
        if (outcome != ClaimStatus.Accepted) {
            toEscrow += t.rewardPerModel;
            reservedFreed += t.rewardPerModel;
            t.openClaims -= 1;
        }
        t.unsettledClaims -= 1;
        t.reserved -= uint88(reservedFreed);
        emit ClaimSettled(claimId, outcome, c.acceptVotes, c.rejectVotes);
        if (outcome == ClaimStatus.Rejected) {
            // Case II (lazy or dishonest contributor): the deposit goes to the escrow.
            t.depositsHeld -= uint80(t.contributorDeposit);
            toEscrow += t.contributorDeposit;
        } else if (outcome == ClaimStatus.Inconclusive) {
            t.depositsHeld -= uint80(t.contributorDeposit);
            _credit(c.claimant, t.contributorDeposit);
        }
        t.escrow += uint88(toEscrow);
        if (outcome == ClaimStatus.Accepted && msg.sender == c.claimant) {
            c.status = ClaimStatus.ReleasePending;
            emit ReleaseCommitted(claimId, msg.sender);
        } else {
            c.status = outcome;
        }
    }

    function _payCommittee(uint256 claimId, Claim storage c, Task storage t, ClaimStatus outcome)
        private
        returns (uint256 paid)
    {
        (address[] memory members,) =
            _drawCommittee(c.taskId, t.committeeSize, c.poolEpoch, c.entropy);
        mapping(address => bytes32) storage ballots = _ballots[claimId];
        uint256 fee = t.verifierFee;
        // Inconclusive: every revealed vote is paid (there is no majority to agree with).
        bytes32 winning = outcome == ClaimStatus.Accepted
            ? BALLOT_ACCEPT
            : (outcome == ClaimStatus.Rejected ? BALLOT_REJECT : bytes32(0));
        for (uint256 i = 0; i < members.length; ++i) {
            address member = members[i];
            bytes32 b = ballots[member];
            if (b == BALLOT_ACCEPT || b == BALLOT_REJECT || b == BALLOT_ABORT) {
                // An abort is paid only when there is no majority (it agrees with none).
                if (winning == 0 || b == winning) {
                    paid += fee;
                    _credit(member, fee);
                }
            } else {
                _slashVerifier(c.taskId, member, t);
            }
        }
    }

    function _slashVerifier(uint256 taskId, address member, Task storage t) private {
        Participant storage p = _participants[taskId][member];
        if (p.state != ParticipantState.Active) return; // already slashed: deposit is gone
        p.state = ParticipantState.Slashed;
        uint16 seq = t.slashCount + 1;
        t.slashCount = seq;
        p.slashSeq = seq;
        uint96 deposit = t.verifierDeposit;
        t.depositsHeld -= uint80(deposit);
        t.escrow += uint88(deposit);
        emit VerifierSlashed(taskId, member, deposit);
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        creditOf[account] += amount;
        emit Credited(account, amount);
    }
}
