"""corral: background tasks where no task is lost and no process strays."""
