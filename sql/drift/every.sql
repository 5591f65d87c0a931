-- Environment $1's drift check interval in seconds (NULL: drift is not checked).
SELECT drift_check_every FROM environments WHERE id = $1
