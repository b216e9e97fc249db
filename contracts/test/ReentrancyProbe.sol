// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice The part of CipherfuseTasks the probe calls.
interface ICipherfuseTasksForProbe {
    /// @notice See CipherfuseTasks.joinAsContributor.
    function joinAsContributor(uint256 taskId) external payable;
    /// @notice See CipherfuseTasks.leaveAsContributor.
    function leaveAsContributor(uint256 taskId) external;
    /// @notice See CipherfuseTasks.withdraw.
    function withdraw() external;
}

/// @title ReentrancyProbe (test only)
/// @notice A hostile payee: when paid by `withdraw`, it calls `withdraw` again from its
/// receive hook and records whether that second call succeeded.
contract ReentrancyProbe {
    /// @notice The contract under attack.
    ICipherfuseTasksForProbe public immutable target;
    /// @notice How many times the receive hook tried to re-enter.
    uint256 public reentryAttempts;
    /// @notice Whether a re-entrant withdraw succeeded (must stay false).
    bool public reentrySucceeded;
    /// @notice Total wei received.
    uint256 public received;
    /// @notice Selector of the error that stopped the re-entrant call.
    bytes4 public reentryError;
    /// @notice When true the receive hook reverts (to exercise TransferFailed).
    bool public rejectPayments;

    /// @param target_ The CipherfuseTasks deployment.
    constructor(address target_) {
        target = ICipherfuseTasksForProbe(target_);
    }

    /// @notice Join a task as contributor and leave at once, so the deposit becomes a credit.
    /// @param taskId The task.
    function joinAndLeave(uint256 taskId) external payable {
        target.joinAsContributor{value: msg.value}(taskId);
        target.leaveAsContributor(taskId);
    }

    /// @notice Make the receive hook revert (true) or accept payments (false).
    /// @param reject The new setting.
    function setRejectPayments(bool reject) external {
        rejectPayments = reject;
    }

    /// @notice Withdraw the credit; the receive hook tries to re-enter.
    function attack() external {
        target.withdraw();
    }

    /// @notice Receive hook: re-enter `withdraw` once.
    receive() external payable {
        require(!rejectPayments, "payments rejected");
        received += msg.value;
        if (reentryAttempts == 0) {
            reentryAttempts = 1;
            try target.withdraw() {
                reentrySucceeded = true;
            } catch (bytes memory reason) {
                reentryError = bytes4(reason);
            }
        }
    }
}
