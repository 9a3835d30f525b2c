"""Where the course's other spreadsheets are: ../shared beside the project (or beside the
folder of worktrees that holds it)."""

from tests.conftest import ROOT

CANDIDATES = [ROOT.parent / "shared", ROOT.parent.parent / "shared"]
COURSE22 = next((path / "fixtures" / "course22" for path in CANDIDATES
                 if (path / "fixtures" / "course22").is_dir()), CANDIDATES[0] / "fixtures" / "course22")
