// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title CipherfuseTasks: escrowed, committee-verified model-building tasks
/// @author cipherfuse developers
/// @notice One deployment serves many tasks. A task moves through: published (budget escrowed)
/// -> join window (contributors and verifiers register with deposits; contributors may leave
/// until they claim) -> claim window (a contributor submits the storage CID and content hash
/// of its encrypted model) -> per claim: the claimant reveals a committed seed which, mixed with
/// the hash of a block mined after the claim, draws the verification committee -> committee
/// members commit, then reveal, their votes -> settlement -> the accepted contributor releases
/// the model-decryption envelope -> after expiry the initiator reclaims what is left.
/// @dev Payments are pull-based (`creditOf` + `withdraw`). Every per-transaction loop is
/// bounded by the committee size (at most `MAX_COMMITTEE_SIZE`), never by the number of
/// participants. Invariant: address(this).balance == sum(creditOf) + sum over tasks of
/// (escrow + reserved + depositsHeld).
contract CipherfuseTasks {
    /// @notice Largest committee a task may ask for; bounds every loop in the contract.
    uint8 public constant MAX_COMMITTEE_SIZE = 15;
    /// @notice The committee is drawn from the hash of the block this many blocks after the claim.
    uint64 public constant DRAW_BLOCK_DELAY = 1;
    /// @notice `blockhash` only sees the last 256 blocks; the seed must be revealed within them.
    uint64 public constant BLOCKHASH_HORIZON = 256;

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
        Forfeited
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

    /// @notice Stored state of a task.
    struct Task {
        address initiator;
        uint16 maxClaims;
        uint16 claimCount;
        uint8 committeeSize;
        uint16 minAccuracyBps;
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
    /// (one slot instead of three), and every call that needs one of them re-checks the digest.
    struct Claim {
        address claimant;
        uint32 taskId;
        ClaimStatus status;
        uint8 acceptVotes;
        uint8 rejectVotes;
        uint40 claimedAt;
        uint64 drawBlock;
        uint40 commitDeadline;
        uint40 revealDeadline;
        uint40 releaseDeadline;
        bytes32 commitmentsDigest;
    }

    /// @notice A participant's record in one task.
    struct Participant {
        Role role;
        ParticipantState state;
        uint32 duties;
        uint32 verifierIndex;
        uint64 claimId;
    }

    /// @notice A committee member's ballot for one claim.
    struct Ballot {
        bytes32 commitment;
        uint8 state;
    }

    uint8 private constant BALLOT_NONE = 0;
    uint8 private constant BALLOT_MEMBER = 1;
    uint8 private constant BALLOT_COMMITTED = 2;
    uint8 private constant BALLOT_ACCEPT = 3;
    uint8 private constant BALLOT_REJECT = 4;

    /// @notice Number of tasks published so far (task ids are 1..taskCount).
    uint256 public taskCount;
    /// @notice Number of claims submitted so far (claim ids are 1..claimCount).
    uint256 public claimCount;
    /// @notice Wei each account may withdraw.
    mapping(address account => uint256 amount) public creditOf;

    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 claimId => Claim) private _claims;
    mapping(uint256 taskId => mapping(address account => Participant)) private _participants;
    mapping(uint256 taskId => address[]) private _activeVerifiers;
    mapping(uint256 claimId => address[]) private _committees;
    mapping(uint256 claimId => mapping(address voter => Ballot)) private _ballots;
    mapping(uint256 claimId => bytes) private _envelopes;

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
    /// @notice A verifier registered with its deposit.
    event VerifierJoined(uint256 indexed taskId, address indexed verifier, uint256 deposit);
    /// @notice A verifier with no pending duty left after expiry; its deposit was credited back.
    event VerifierRetired(uint256 indexed taskId, address indexed verifier, uint256 refund);
    /// @notice A verifier missed a reveal and lost its deposit to the task escrow.
    event VerifierSlashed(uint256 indexed taskId, address indexed verifier, uint256 amount);
    /// @notice A contributor claimed with the storage CID and content hash of its encrypted model.
    event ClaimSubmitted(
        uint256 indexed taskId,
        uint256 indexed claimId,
        address indexed claimant,
        string modelCid,
        bytes32 modelHash,
        bytes32 seedCommitment,
        bytes32 envelopeCommitment,
        uint256 drawBlock
    );
    /// @notice The claimant revealed its seed and the committee was drawn.
    event CommitteeDrawn(
        uint256 indexed claimId, bytes32 seed, bytes32 randomness, address[] members
    );
    /// @notice A committee member committed to a hidden vote.
    event VoteCommitted(uint256 indexed claimId, address indexed verifier, bytes32 commitment);
    /// @notice A committee member revealed its vote.
    event VoteRevealed(uint256 indexed claimId, address indexed verifier, bool accept);
    /// @notice A claim was settled with the given outcome.
    event ClaimSettled(
        uint256 indexed claimId, ClaimStatus outcome, uint8 acceptVotes, uint8 rejectVotes
    );
    /// @notice The accepted contributor released the model-decryption envelope.
    event EnvelopeReleased(uint256 indexed claimId, address indexed contributor, bytes envelope);
    /// @notice An accepted contributor missed the release deadline; reward and deposit went to
    /// the initiator.
    event ClaimForfeited(uint256 indexed claimId, address indexed initiator, uint256 amount);
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
    /// @notice Every claim the budget pays for has been made.
    error BudgetExhausted(uint256 taskId, uint256 maxClaims);
    /// @notice Fewer active verifiers than the committee size.
    error NotEnoughVerifiers(uint256 active, uint256 needed);
    /// @notice A commitment may not be zero.
    error ZeroCommitment();
    /// @notice Only the claimant may do this.
    error NotClaimant(uint256 claimId, address caller);
    /// @notice The claim is not in the status this call needs.
    error WrongClaimStatus(uint256 claimId, ClaimStatus status);
    /// @notice The seed may be revealed from block `firstBlock` on.
    error SeedRevealTooEarly(uint256 firstBlock);
    /// @notice The seed reveal window ended (time `deadline` or block `lastBlock`).
    error SeedRevealTooLate(uint256 deadline, uint256 lastBlock);
    /// @notice The revealed value does not match the stored commitment.
    error CommitmentMismatch();
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
    /// @notice The release deadline `deadline` has not passed yet.
    error ReleaseWindowOpen(uint256 deadline);
    /// @notice Only the task initiator may do this.
    error NotInitiator(uint256 taskId, address caller);
    /// @notice The task expires at `expiry`.
    error TaskNotExpired(uint256 expiry);
    /// @notice There is nothing to reclaim.
    error NothingToReclaim(uint256 taskId);
    /// @notice The verifier still sits on `duties` unsettled committees.
    error VerifierHasDuties(uint256 duties);
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

    /// @notice After expiry, credit the unspent escrow (including slashed deposits) to the
    /// initiator. May be called again if late settlements return more funds.
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
    /// @param taskId The task.
    /// @param modelCid Storage CID of the encrypted model.
    /// @param modelHash Content hash of the encrypted model.
    /// @param seedCommitment keccak256(abi.encode(taskId, claimant, seed)) for a secret seed.
    /// @param envelopeCommitment keccak256 of the model-decryption envelope released later.
    /// @return claimId The new claim's id.
    function submitClaim(
        uint256 taskId,
        string calldata modelCid,
        bytes32 modelHash,
        bytes32 seedCommitment,
        bytes32 envelopeCommitment
    ) external returns (uint256 claimId) {
        Task storage t = _task(taskId);
        _checkClaimAllowed(taskId, t);
        if (modelHash == 0 || seedCommitment == 0 || envelopeCommitment == 0) {
            revert ZeroCommitment();
        }
        claimId = ++claimCount;
        uint256 cost = _perClaimCost(t.rewardPerModel, t.verifierFee, t.committeeSize);
        t.claimCount += 1;
        t.escrow -= uint88(cost);
        t.reserved += uint88(cost);
        Participant storage me = _participants[taskId][msg.sender];
        me.state = ParticipantState.Claimed;
        me.claimId = uint64(claimId);
        uint64 drawBlock = uint64(block.number) + DRAW_BLOCK_DELAY;
        Claim storage c = _claims[claimId];
        c.claimant = msg.sender;
        c.taskId = uint32(taskId);
        c.status = ClaimStatus.AwaitingSeed;
        c.claimedAt = uint40(block.timestamp);
        c.drawBlock = drawBlock;
        c.commitmentsDigest = commitmentsDigestOf(modelHash, seedCommitment, envelopeCommitment);
        emit ClaimSubmitted(
            taskId,
            claimId,
            msg.sender,
            modelCid,
            modelHash,
            seedCommitment,
            envelopeCommitment,
            drawBlock
        );
    }

    /// @notice Reveal the claim seed; with the hash of the draw block it selects the committee.
    /// @dev Callable once the draw block is mined, until `claimedAt + drawWindow` and within
    /// `BLOCKHASH_HORIZON` blocks of the draw block.
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
        Task storage t = _tasks[c.taskId];
        _checkSeedWindow(c, t);
        bytes32 seedCommitment = keccak256(abi.encode(uint256(c.taskId), msg.sender, seed));
        if (
            commitmentsDigestOf(modelHash, seedCommitment, envelopeCommitment)
                != c.commitmentsDigest
        ) revert CommitmentMismatch();
        bytes32 randomness = keccak256(abi.encode(seed, blockhash(c.drawBlock), claimId));
        if (_activeVerifiers[c.taskId].length < t.committeeSize) {
            _settleWithoutCommittee(claimId, c, t);
            return;
        }
        c.status = ClaimStatus.Voting;
        uint40 commitDeadline = uint40(block.timestamp) + t.commitWindow;
        c.commitDeadline = commitDeadline;
        c.revealDeadline = commitDeadline + t.revealWindow;
        c.releaseDeadline = commitDeadline + t.revealWindow + t.releaseWindow;
        address[] memory members = _drawCommittee(claimId, c.taskId, t.committeeSize, randomness);
        emit CommitteeDrawn(claimId, seed, randomness, members);
    }

    /// @notice Release the model-decryption envelope of an accepted claim; pays the reward and
    /// returns the deposit. `keccak256(envelope)` must equal the claim's envelope commitment.
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
        if (c.status != ClaimStatus.Accepted) revert WrongClaimStatus(claimId, c.status);
        if (block.timestamp > c.releaseDeadline) revert ReleaseWindowClosed(c.releaseDeadline);
        if (
            commitmentsDigestOf(modelHash, seedCommitment, keccak256(envelope))
                != c.commitmentsDigest
        ) revert CommitmentMismatch();
        Task storage t = _tasks[c.taskId];
        c.status = ClaimStatus.Released;
        _envelopes[claimId] = envelope;
        uint256 reward = t.rewardPerModel;
        uint256 deposit = t.contributorDeposit;
        t.reserved -= uint88(reward);
        t.depositsHeld -= uint80(deposit);
        emit EnvelopeReleased(claimId, msg.sender, envelope);
        _credit(msg.sender, reward + deposit);
    }

    /// @notice After the release deadline of an accepted but unreleased claim, give its reward
    /// and the claimant's deposit to the initiator. Anyone may call.
    /// @param claimId The claim.
    function forfeitUnreleased(uint256 claimId) external {
        Claim storage c = _claim(claimId);
        if (c.status != ClaimStatus.Accepted) revert WrongClaimStatus(claimId, c.status);
        if (block.timestamp <= c.releaseDeadline) revert ReleaseWindowOpen(c.releaseDeadline);
        Task storage t = _tasks[c.taskId];
        c.status = ClaimStatus.Forfeited;
        uint256 amount = uint256(t.rewardPerModel) + t.contributorDeposit;
        t.reserved -= uint88(t.rewardPerModel);
        t.depositsHeld -= uint80(t.contributorDeposit);
        emit ClaimForfeited(claimId, t.initiator, amount);
        _credit(t.initiator, amount);
    }

    // ------------------------------------------------------------------ verifiers

    /// @notice Register as a verifier during the join window, paying the deposit.
    /// @param taskId The task.
    function joinAsVerifier(uint256 taskId) external payable {
        Task storage t = _task(taskId);
        _checkJoin(taskId, t, t.verifierDeposit);
        address[] storage active = _activeVerifiers[taskId];
        Participant storage me = _participants[taskId][msg.sender];
        me.role = Role.Verifier;
        me.state = ParticipantState.Active;
        me.verifierIndex = uint32(active.length);
        active.push(msg.sender);
        t.depositsHeld += uint80(msg.value);
        emit VerifierJoined(taskId, msg.sender, msg.value);
    }

    /// @notice Commit to a hidden vote on a claim during its commit window.
    /// @param claimId The claim.
    /// @param commitment keccak256(abi.encode(claimId, verifier, accept, salt)).
    function commitVote(uint256 claimId, bytes32 commitment) external {
        Claim storage c = _claim(claimId);
        if (c.status != ClaimStatus.Voting) revert WrongClaimStatus(claimId, c.status);
        if (block.timestamp > c.commitDeadline) revert CommitWindowClosed(c.commitDeadline);
        if (commitment == 0) revert ZeroCommitment();
        Ballot storage b = _ballots[claimId][msg.sender];
        if (b.state == BALLOT_NONE) revert NotCommitteeMember(claimId, msg.sender);
        if (b.state != BALLOT_MEMBER) revert AlreadyCommitted(claimId, msg.sender);
        b.commitment = commitment;
        b.state = BALLOT_COMMITTED;
        emit VoteCommitted(claimId, msg.sender, commitment);
    }

    /// @notice Reveal a committed vote after the commit window and before the reveal deadline.
    /// @param claimId The claim.
    /// @param accept The vote: true accepts the model.
    /// @param salt The secret salt used in the commitment.
    function revealVote(uint256 claimId, bool accept, bytes32 salt) external {
        Claim storage c = _claim(claimId);
        if (c.status != ClaimStatus.Voting) revert WrongClaimStatus(claimId, c.status);
        if (block.timestamp <= c.commitDeadline || block.timestamp > c.revealDeadline) {
            revert RevealWindowNotOpen(c.commitDeadline, c.revealDeadline);
        }
        Ballot storage b = _ballots[claimId][msg.sender];
        if (b.state != BALLOT_COMMITTED) {
            if (b.state == BALLOT_NONE) revert NotCommitteeMember(claimId, msg.sender);
            revert NothingToReveal(claimId, msg.sender);
        }
        if (keccak256(abi.encode(claimId, msg.sender, accept, salt)) != b.commitment) {
            revert CommitmentMismatch();
        }
        if (accept) {
            b.state = BALLOT_ACCEPT;
            c.acceptVotes += 1;
        } else {
            b.state = BALLOT_REJECT;
            c.rejectVotes += 1;
        }
        emit VoteRevealed(claimId, msg.sender, accept);
    }

    /// @notice After expiry, a verifier with no unsettled committee duty takes its deposit back.
    /// @param taskId The task.
    function retireVerifier(uint256 taskId) external {
        Task storage t = _task(taskId);
        Participant storage me = _participants[taskId][msg.sender];
        if (me.role != Role.Verifier || me.state != ParticipantState.Active) {
            revert NotActiveVerifier(taskId, msg.sender);
        }
        if (block.timestamp <= t.expiry) revert TaskNotExpired(t.expiry);
        if (me.duties != 0) revert VerifierHasDuties(me.duties);
        me.state = ParticipantState.Retired;
        uint256 refund = t.verifierDeposit;
        t.depositsHeld -= uint80(refund);
        emit VerifierRetired(taskId, msg.sender, refund);
        _credit(msg.sender, refund);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Settle a claim. Anyone may call: after the seed window for a claim whose seed
    /// was never revealed (void, deposit slashed), or after the reveal deadline (or once every
    /// member revealed) for a claim under vote. Work is bounded by the committee size.
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

    /// @notice Committee drawn for a claim (empty before the draw).
    /// @param claimId The claim.
    /// @return The members in draw order.
    function committeeOf(uint256 claimId) external view returns (address[] memory) {
        return _committees[claimId];
    }

    /// @notice A committee member's ballot: the commitment, and the state
    /// (0 none, 1 member, 2 committed, 3 revealed accept, 4 revealed reject).
    /// @param claimId The claim.
    /// @param voter The committee member.
    /// @return commitment The vote commitment.
    /// @return state The ballot state.
    function ballotOf(uint256 claimId, address voter)
        external
        view
        returns (bytes32 commitment, uint8 state)
    {
        Ballot storage b = _ballots[claimId][voter];
        return (b.commitment, b.state);
    }

    /// @notice Envelope released for a claim (empty before release).
    /// @param claimId The claim.
    /// @return The envelope bytes.
    function envelopeOf(uint256 claimId) external view returns (bytes memory) {
        return _envelopes[claimId];
    }

    /// @notice The digest a claim stores for its three public commitments.
    /// @param modelHash Content hash of the encrypted model.
    /// @param seedCommitment Commitment to the claim seed.
    /// @param envelopeCommitment keccak256 of the envelope.
    /// @return keccak256(abi.encode(modelHash, seedCommitment, envelopeCommitment)).
    function commitmentsDigestOf(
        bytes32 modelHash,
        bytes32 seedCommitment,
        bytes32 envelopeCommitment
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(modelHash, seedCommitment, envelopeCommitment));
    }

    /// @notice Number of verifiers of a task still eligible for committees.
    /// @param taskId The task.
    /// @return The count.
    function activeVerifierCount(uint256 taskId) external view returns (uint256) {
        return _activeVerifiers[taskId].length;
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
        if (p.contributorDeposit > type(uint80).max) revert InvalidParameter("contributorDeposit");
        if (p.verifierDeposit > type(uint80).max) revert InvalidParameter("verifierDeposit");
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
        if (t.claimCount >= t.maxClaims) revert BudgetExhausted(taskId, t.maxClaims);
        uint256 active = _activeVerifiers[taskId].length;
        if (active < t.committeeSize) revert NotEnoughVerifiers(active, t.committeeSize);
    }

    function _checkSeedWindow(Claim storage c, Task storage t) private view {
        if (block.number <= c.drawBlock) revert SeedRevealTooEarly(c.drawBlock + 1);
        uint256 deadline = uint256(c.claimedAt) + t.drawWindow;
        uint256 lastBlock = uint256(c.drawBlock) + BLOCKHASH_HORIZON;
        if (block.timestamp > deadline || block.number > lastBlock) {
            revert SeedRevealTooLate(deadline, lastBlock);
        }
    }

    function _drawCommittee(uint256 claimId, uint256 taskId, uint8 size, bytes32 randomness)
        private
        returns (address[] memory members)
    {
        address[] storage pool = _activeVerifiers[taskId];
        mapping(address => Ballot) storage ballots = _ballots[claimId];
        uint256 n = pool.length;
        members = new address[](size);
        for (uint256 i = 0; i < size; ++i) {
            uint256 idx = uint256(keccak256(abi.encode(randomness, i))) % n;
            // Linear probing past already-drawn members: at most i steps.
            while (ballots[pool[idx]].state != BALLOT_NONE) {
                idx = idx + 1 == n ? 0 : idx + 1;
            }
            address member = pool[idx];
            ballots[member].state = BALLOT_MEMBER;
            _participants[taskId][member].duties += 1;
            members[i] = member;
        }
        _committees[claimId] = members;
    }

    function _settleWithoutCommittee(uint256 claimId, Claim storage c, Task storage t) private {
        c.status = ClaimStatus.Inconclusive;
        uint256 cost = _perClaimCost(t.rewardPerModel, t.verifierFee, t.committeeSize);
        t.reserved -= uint88(cost);
        t.escrow += uint88(cost);
        t.depositsHeld -= uint80(t.contributorDeposit);
        emit ClaimSettled(claimId, ClaimStatus.Inconclusive, 0, 0);
        _credit(c.claimant, t.contributorDeposit);
    }

    function _settleVoid(uint256 claimId, Claim storage c, Task storage t) private {
        uint256 deadline = uint256(c.claimedAt) + t.drawWindow;
        uint256 lastBlock = uint256(c.drawBlock) + BLOCKHASH_HORIZON;
        if (block.timestamp <= deadline && block.number <= lastBlock) {
            revert SettlementTooEarly(deadline);
        }
        c.status = ClaimStatus.Void;
        uint256 cost = _perClaimCost(t.rewardPerModel, t.verifierFee, t.committeeSize);
        t.reserved -= uint88(cost);
        t.depositsHeld -= uint80(t.contributorDeposit);
        t.escrow += uint88(cost);
        t.escrow += uint88(t.contributorDeposit);
        emit ClaimSettled(claimId, ClaimStatus.Void, 0, 0);
    }

    function _settleVote(uint256 claimId, Claim storage c, Task storage t) private {
        uint8 size = t.committeeSize;
        if (block.timestamp <= c.revealDeadline && c.acceptVotes + c.rejectVotes < size) {
            revert SettlementTooEarly(c.revealDeadline);
        }
        ClaimStatus outcome = ClaimStatus.Inconclusive;
        if (c.acceptVotes > size / 2) outcome = ClaimStatus.Accepted;
        else if (c.rejectVotes > size / 2) outcome = ClaimStatus.Rejected;
        c.status = outcome;
        uint256 paidFees = _payCommittee(claimId, c.taskId, t);
        uint256 unspent = uint256(t.verifierFee) * size - paidFees;
        uint256 reservedFreed = uint256(t.verifierFee) * size;
        if (outcome != ClaimStatus.Accepted) {
            unspent += t.rewardPerModel;
            reservedFreed += t.rewardPerModel;
        }
        t.reserved -= uint88(reservedFreed);
        t.escrow += uint88(unspent);
        emit ClaimSettled(claimId, outcome, c.acceptVotes, c.rejectVotes);
        _settleContributorDeposit(c, t, outcome);
    }

    function _settleContributorDeposit(Claim storage c, Task storage t, ClaimStatus outcome)
        private
    {
        if (outcome == ClaimStatus.Rejected) {
            // Case II (lazy or dishonest contributor): the deposit goes to the escrow.
            t.depositsHeld -= uint80(t.contributorDeposit);
            t.escrow += uint88(t.contributorDeposit);
        } else if (outcome == ClaimStatus.Inconclusive) {
            t.depositsHeld -= uint80(t.contributorDeposit);
            _credit(c.claimant, t.contributorDeposit);
        }
        // Accepted: the deposit stays held until release or forfeit.
    }

    function _payCommittee(uint256 claimId, uint256 taskId, Task storage t)
        private
        returns (uint256 paid)
    {
        address[] storage members = _committees[claimId];
        mapping(address => Ballot) storage ballots = _ballots[claimId];
        uint256 fee = t.verifierFee;
        uint256 size = members.length;
        for (uint256 i = 0; i < size; ++i) {
            address member = members[i];
            Participant storage p = _participants[taskId][member];
            p.duties -= 1;
            if (ballots[member].state >= BALLOT_ACCEPT) {
                paid += fee;
                _credit(member, fee);
            } else {
                _slashVerifier(taskId, member, p, t);
            }
        }
    }

    function _slashVerifier(uint256 taskId, address member, Participant storage p, Task storage t)
        private
    {
        if (p.state != ParticipantState.Active) return; // already slashed: deposit is gone
        p.state = ParticipantState.Slashed;
        address[] storage pool = _activeVerifiers[taskId];
        uint256 last = pool.length - 1;
        if (p.verifierIndex != last) {
            address moved = pool[last];
            pool[p.verifierIndex] = moved;
            _participants[taskId][moved].verifierIndex = p.verifierIndex;
        }
        pool.pop();
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
